"""Finding spec files and putting them in the method registry.

Specs come from the folders in ``TVBENCH_METHOD_PATH`` (``os.pathsep``-separated, like ``PATH``: the first
folder defining a name wins; a file may be named instead of a folder), from ``tvbench run --method-spec FILE``,
and from the examples shipped in this package (``specs/``), which stand back for a user's spec of the same
name. Files are parsed when registered (cheap), but a method is only built, with its ``${VARS}`` read and its
cwd checked, when it is used or listed; a spec that cannot run here is listed as unavailable with the reason.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from tvbench.errors import UnavailableError
from tvbench.registry import Deferred, Registry
from tvbench_adapters.external.spec import MethodSpec, SpecError, load_spec

METHOD_PATH_ENV = "TVBENCH_METHOD_PATH"
EXAMPLES_DIR = Path(__file__).resolve().parent / "specs"
TEMPLATE_WORKER = Path(__file__).resolve().parent / "templates" / "worker_template.py"
log = logging.getLogger(__name__)


class SpecEntry(Deferred):
    """A registry target for one spec file; builds the method class on first use."""

    def __init__(self, path: Path, spec: MethodSpec | None, error: SpecError | None = None):
        self.path = path
        self.spec = spec
        self.error = error

    def resolve(self) -> Any:
        from tvbench_adapters.external.method import build_method_class

        if self.error is not None:
            raise UnavailableError(str(self.error))
        assert self.spec is not None
        try:
            return build_method_class(self.spec)
        except SpecError as exc:
            raise UnavailableError(str(exc)) from None


def method_path() -> list[Path]:
    """The entries of ``TVBENCH_METHOD_PATH``, in order."""
    raw = os.environ.get(METHOD_PATH_ENV, "")
    return [Path(part).expanduser() for part in raw.split(os.pathsep) if part.strip()]


def spec_files(place: Path) -> list[Path]:
    """``*.toml`` directly in a folder (sorted), or the file itself."""
    if place.is_file():
        return [place]
    if place.is_dir():
        return sorted(path for path in place.glob("*.toml") if path.is_file())
    log.warning("%s=%s: %s is not a folder or file; ignored", METHOD_PATH_ENV, os.environ.get(METHOD_PATH_ENV), place)
    return []


def _origin(path: Path, example: bool) -> str:
    return f"{'example ' if example else ''}spec {path}"


def _is_spec_entry(registry: Registry, name: str) -> bool:
    return name in registry.names() and isinstance(registry.entry(name).target, SpecEntry)


def register_specs(registry: Registry, places: list[Path] | None = None, *, examples: bool = True) -> list[str]:
    """Register every spec under ``places`` (default: ``TVBENCH_METHOD_PATH``) and the shipped examples.

    Never raises: a spec that does not parse is registered under its file name as unavailable, with the error.
    Returns the names registered.
    """
    claimed: dict[str, Path] = {}
    found = [(path, False) for place in (method_path() if places is None else places) for path in spec_files(place)]
    if examples:
        found += [(path, True) for path in spec_files(EXAMPLES_DIR)]
    for path, example in found:
        try:
            spec: MethodSpec | None = load_spec(path)
            error = None
            name = spec.name
        except SpecError as exc:
            spec, error, name = None, exc, path.stem
        if name in claimed:
            if not example:
                log.warning("method spec %s is ignored: %s already defines %r", path, claimed[name], name)
            continue
        if name in registry.names() and not _is_spec_entry(registry, name):
            log.warning("method spec %s is ignored: %r is already a method (%s)", path, name,
                        registry.entry(name).origin)
            continue
        registry.register(name, SpecEntry(path, spec, error), origin=_origin(path, example), replace=True)
        claimed[name] = path
    return list(claimed)


def register_spec_file(registry: Registry, path: str | Path) -> str:
    """Register one spec (``tvbench run --method-spec FILE``); a bad spec raises :class:`SpecError`."""
    spec = load_spec(path)
    if spec.name in registry.names() and not _is_spec_entry(registry, spec.name):
        raise SpecError(path, "name", f"{spec.name!r} is already a method ({registry.entry(spec.name).origin}); "
                        "choose another name")
    registry.register(spec.name, SpecEntry(Path(path), spec), origin=_origin(Path(path), False), replace=True)
    return spec.name
