"""One registry pattern for everything that is looked up by name (methods, metrics).

Entries are registered as ``"module:attribute"`` strings and imported only when used, so a method whose
optional dependency is missing is listed as unavailable (with an install hint) instead of breaking the
listing or the other methods. Third-party packages add entries through a Python entry-point group
(``tvbench.methods`` for methods), with no fork of tvbench.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import logging
import re
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, Iterable, TypeVar

from tvbench.errors import UnavailableError, UnknownNameError

T = TypeVar("T")
log = logging.getLogger(__name__)


def normalised(name: str) -> str:
    """A spelling-insensitive form for did-you-mean: case, ``_``, spaces and ``-`` do not count."""
    return re.sub(r"[\s_\-]+", "-", name.strip().lower())


def _abbreviates(short: str, name: str) -> bool:
    """``md`` for ``markdown``: the same first letter, then the rest of ``short`` in order within ``name``."""
    if not 2 <= len(short) < len(name) or short[0] != name[0]:
        return False
    rest = iter(name[1:])
    return all(letter in rest for letter in short[1:])


def close_matches(name: str, choices: Iterable[str], n: int = 3, cutoff: float = 0.6, *,
                  abbreviations: bool = True) -> list[str]:
    """The choices ``name`` most likely meant: equal but for case and separators (``TPS-Warp``), close in
    spelling (``sampel``), or (``abbreviations``) abbreviated (``md``); best first."""
    by_form: dict[str, str] = {}
    for choice in choices:
        by_form.setdefault(normalised(choice), choice)
    wanted = normalised(name)
    if wanted in by_form:
        return [by_form[wanted]]
    close = difflib.get_close_matches(wanted, list(by_form), n=n, cutoff=cutoff)
    if abbreviations:
        close += [form for form in by_form if form not in close and _abbreviates(wanted, form)]
    return [by_form[form] for form in close[:n]]


def suggest(name: str, choices: Iterable[str], *, abbreviations: bool = True) -> str:
    """A ``"; did you mean ...?"`` suffix for error messages, or an empty string."""
    close = close_matches(name, choices, abbreviations=abbreviations)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


class Deferred:
    """A registry target built on first use, e.g. from a file: :meth:`resolve` returns the object or raises
    :class:`UnavailableError` saying why it cannot be used here (listed as unavailable, never a crash)."""

    def resolve(self) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Entry:
    name: str
    target: Any  # "module:attribute", a Deferred, or the object itself
    extra: str | None = None  # the tvbench extra that installs its dependencies
    origin: str = "tvbench"  # "tvbench", or the distribution that declared the entry point
    requires: tuple[str, ...] = ()  # import names the entry needs at setup; checked without importing them
    weights: tuple[tuple[str, str], ...] = ()  # (option, marker): options naming weights, checked by `tvbench ls`

    def missing(self) -> str | None:
        """The first required package that is not installed (found without importing anything)."""
        for package in self.requires:
            try:
                if importlib.util.find_spec(package) is None:
                    return package
            except (ImportError, ValueError):
                return package
        return None

    def install_hint(self, missing: str | None = None) -> str:
        if self.extra:
            return f'pip install "tvbench[{self.extra}]"'
        if missing:
            return f"pip install {missing}"
        return f"reinstall {self.origin}"


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str = ""
    hint: str = ""


class Registry(Generic[T]):
    def __init__(self, kind: str, entry_point_group: str | None = None):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, Entry] = {}
        self._loaded: dict[str, T] = {}
        self._plugins_scanned = entry_point_group is None

    def register(self, name: str, target: Any, *, extra: str | None = None, origin: str = "tvbench",
                 requires: tuple[str, ...] = (), weights: dict[str, str] | None = None,
                 replace: bool = False) -> None:
        """Register ``target`` (``"module:attribute"`` or the object) under ``name``.

        ``requires`` lists the heavy packages the entry imports only when used (``("diffusers",)``): the
        module itself must import without them, so listing stays fast, while a missing one still marks the
        entry unavailable, with ``extra``'s install hint. ``weights`` maps the options that name weights to the file
        that marks them (``{"model": "model_index.json"}``; see :func:`tvbench.methods.needs.method_needs`), so
        ``tvbench ls`` can say whether the defaults are on this machine.
        """
        if name in self._entries and not replace:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = Entry(name, target, extra, origin, tuple(requires), tuple((weights or {}).items()))
        self._loaded.pop(name, None)

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)
        self._loaded.pop(name, None)

    def _scan_plugins(self) -> None:
        if self._plugins_scanned:
            return
        self._plugins_scanned = True
        for point in entry_points(group=self.entry_point_group):
            origin = point.dist.name if point.dist is not None else "a plugin"
            if point.name in self._entries:
                log.warning("%s %r from %s is ignored: the name is taken", self.kind, point.name, origin)
                continue
            self._entries[point.name] = Entry(point.name, point.value, None, origin)

    def names(self) -> list[str]:
        self._scan_plugins()
        return sorted(self._entries)

    def entry(self, name: str) -> Entry:
        self._scan_plugins()
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self.names())
            raise UnknownNameError(f"unknown {self.kind} {name!r}{suggest(name, self._entries)} "
                                   f"(known: {known})") from None

    def load(self, name: str) -> T:
        """Import and return the registered object, or raise :class:`UnavailableError` with a fix."""
        if name in self._loaded:
            return self._loaded[name]
        entry = self.entry(name)
        missing = entry.missing()
        if missing:
            raise UnavailableError(f"{self.kind} {name!r} is unavailable: it needs {missing}, which is not installed "
                                   f"(install with: {entry.install_hint(missing)})")
        obj = entry.target
        if isinstance(obj, str):
            module_name, _, attribute = obj.partition(":")
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                missing = getattr(exc, "name", None)
                raise UnavailableError(f"{self.kind} {name!r} is unavailable: {exc} "
                                       f"(install with: {entry.install_hint(missing)})") from None
            try:
                obj = getattr(module, attribute) if attribute else module
            except AttributeError:
                raise UnavailableError(f"{self.kind} {name!r} points to {entry.target!r}, which does not "
                                       f"exist ({entry.origin})") from None
        elif isinstance(obj, Deferred):
            obj = obj.resolve()
        self._loaded[name] = obj
        return obj

    def availability(self, name: str) -> Availability:
        try:
            self.load(name)
        except UnavailableError as exc:
            entry = self.entry(name)
            return Availability(False, str(exc), entry.install_hint())
        except Exception as exc:  # a plugin that crashes on import must not break `tvbench ls`
            return Availability(False, f"import failed: {type(exc).__name__}: {exc}", "")
        return Availability(True)
