"""Method spec files: a TOML description of a command that edits one case (or a worker that edits many).

A spec names the method, declares its inputs (Table 1's letters), the folder layout its script reads, and the
command to run. Everything is validated when the file is read; a problem is one line naming the file and the
field (``geodrag.toml: timeout_s: must be a positive number, got -1``). Example (GeoDrag's per-case CLI)::

    name = "geodrag"
    summary = "GeoDrag, run from your clone"
    inputs = ["image", "mask", "points", "caption"]
    layout = "dragbench"                     # tvbench | dragbench | gooddrag: the files written per case
    mode = "process"                         # process: one command per case; worker: a long-lived JSON-lines worker
    cwd = "${GEODRAG_DIR}"                   # ${VAR} and ${VAR:-default} come from the environment
    command = ["${GEODRAG_PYTHON}", "inference_drag.py", "-c", "configs/base_configs.yaml",
               "-i", "{source}", "-m", "{meta}", "-o", "{work_dir}/out"]
    output = "{work_dir}/out/dragged_image.png"
    timeout_s = 1800

``{name}`` placeholders are filled per case (:mod:`.placeholders` lists them); ``${VAR}`` are read from the
environment when the method is built, so a spec can be shared while each machine says where its clone is.
The parsed content (as written, before any expansion) is part of the method's config hash.
"""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tvbench.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from tvbench_adapters.external.placeholders import allowed_placeholders, names_in

LAYOUTS = ("tvbench", "dragbench", "gooddrag")
MODES = ("process", "worker")
SPEC_INPUTS = ("image", "mask", "caption", "points", "instruction")
"""What an external method may read. ``target`` is not offered: an editor never sees the ground truth."""

DEFAULT_OUTPUT = "{work_dir}/output.png"
DEFAULT_TIMEOUT_S = 1800.0
"""Per case. DragDiffusion's LoRA (~20 s) plus its drag (~1 min) on an A100 (issue 11) fit many times over;
GoodDrag's bench script trains its LoRA per case too."""
DEFAULT_STARTUP_TIMEOUT_S = 900.0
"""Worker mode: loading Stable Diffusion from a cold disk cache can take minutes."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ENV_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_FIELDS = ("name", "summary", "version", "url", "inputs", "layout", "mode", "command", "cwd", "env", "output",
           "timeout_s", "startup_timeout_s", "keep_work", "work_root")


class SpecError(ConfigError):
    """A spec file that cannot be used; the message names the file and the field."""

    def __init__(self, path: Path | str, field_name: str | None, problem: str):
        self.path = str(path)
        self.field = field_name
        where = f"{path}: {field_name}: " if field_name else f"{path}: "
        super().__init__(where + problem)


@dataclass(frozen=True)
class MethodSpec:
    """A validated spec. Templates keep their ``{placeholders}`` and ``${VARS}``; see :meth:`resolved`."""

    path: Path
    name: str
    command: tuple[str, ...]
    inputs: frozenset[str]
    summary: str = ""
    version: str = "1"
    url: str = ""
    layout: str = "tvbench"
    mode: str = "process"
    cwd: str = "."
    env: dict[str, str] = field(default_factory=dict)
    output: str = DEFAULT_OUTPUT
    timeout_s: float = DEFAULT_TIMEOUT_S
    startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S
    keep_work: bool = False
    work_root: str | None = None
    content: dict[str, Any] = field(default_factory=dict)  # the parsed TOML as written: hashed into the config

    @property
    def spec_dir(self) -> Path:
        return self.path.resolve().parent

    def error(self, field_name: str | None, problem: str) -> SpecError:
        return SpecError(self.path, field_name, problem)

    def expand(self, field_name: str, text: str) -> str:
        """``${VAR}`` / ``${VAR:-default}`` from the environment (``$$`` is a literal ``$``); unset is an error."""

        def replace(match: re.Match) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            value = os.environ.get(name)
            if value is None or value == "":
                if default is not None:
                    return default
                raise self.error(field_name, f"environment variable {name} is not set")
            return value

        return _ENV_REFERENCE.sub(replace, text)

    def resolved_cwd(self) -> Path:
        """The folder commands run in: relative paths are relative to the spec file; it must exist."""
        folder = Path(self.expand("cwd", self.cwd)).expanduser()
        if not folder.is_absolute():
            folder = self.spec_dir / folder
        if not folder.is_dir():
            raise self.error("cwd", f"{folder} is not a folder (clone the method's repository there, or fix the path)")
        return folder.resolve()


def load_spec(path: str | Path) -> MethodSpec:
    """Read and validate one spec file; raises :class:`SpecError` (one line) for any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(path, None, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(path, None, f"cannot read: {exc}") from None
    try:
        content = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(path, None, f"not valid TOML: {exc}") from None
    return parse_spec(content, path)


def parse_spec(content: dict[str, Any], path: Path) -> MethodSpec:
    """Validate a parsed spec (see the module doc for the fields)."""
    check = _Checker(path, content)
    unknown = sorted(set(content) - set(_FIELDS))
    if unknown:
        raise SpecError(path, unknown[0], f"unknown field; allowed fields are {', '.join(_FIELDS)}")
    name = check.string("name", required=True)
    if not _NAME.fullmatch(name):
        raise SpecError(path, "name", f"{name!r} is not a usable method name; use letters, digits, '.', '_' and '-' "
                        "(at most 64 characters, starting with a letter or digit)")
    layout = check.choice("layout", LAYOUTS, "tvbench")
    mode = check.choice("mode", MODES, "process")
    inputs = check.inputs()
    if layout in ("dragbench", "gooddrag") and "points" not in inputs:
        raise SpecError(path, "inputs", f"layout {layout!r} writes drag points, so inputs must include 'points'")
    command = check.command()
    env = check.env()
    output = check.string("output") or DEFAULT_OUTPUT
    startup = check.number("startup_timeout_s", DEFAULT_STARTUP_TIMEOUT_S)
    if "startup_timeout_s" in content and mode != "worker":
        raise SpecError(path, "startup_timeout_s", "only applies to mode = 'worker'")
    spec = MethodSpec(
        path=path, name=name, command=command, inputs=inputs, summary=check.string("summary"),
        version=check.version(), url=check.string("url"), layout=layout, mode=mode,
        cwd=check.string("cwd") or ".", env=env, output=output, timeout_s=check.number("timeout_s", DEFAULT_TIMEOUT_S),
        startup_timeout_s=startup, keep_work=check.boolean("keep_work", False),
        work_root=check.string("work_root") or None, content=content,
    )
    _check_placeholders(spec)
    return spec


def _check_placeholders(spec: MethodSpec) -> None:
    """Every ``{name}`` must exist for this mode, layout and set of inputs, so a typo fails before any case."""
    per_case = spec.mode == "process"
    fields: list[tuple[str, str, frozenset[str]]] = []
    command_names = allowed_placeholders(spec.layout, spec.inputs, per_case=per_case)
    fields += [(f"command[{k}]", item, command_names) for k, item in enumerate(spec.command)]
    fields += [(f"env.{key}", value, command_names) for key, value in spec.env.items()]
    fields.append(("output", spec.output, allowed_placeholders(spec.layout, spec.inputs, per_case=True, output=True)))
    fields.append(("cwd", spec.cwd, frozenset()))
    if spec.work_root:
        fields.append(("work_root", spec.work_root, frozenset()))
    for where, template, allowed in fields:
        for name in names_in(template):
            if name not in allowed:
                if spec.mode == "worker" and where != "output" and name in allowed_placeholders(
                        spec.layout, spec.inputs, per_case=True):
                    hint = "; a worker's command starts once, so per-case values come in its requests instead"
                else:
                    hint = f"; allowed here: {', '.join('{' + n + '}' for n in sorted(allowed)) or 'none'}"
                raise spec.error(where, f"unknown placeholder {{{name}}}{hint}")


class _Checker:
    """Type checks with messages that name the file and the field."""

    def __init__(self, path: Path, content: dict[str, Any]):
        self.path = path
        self.content = content

    def fail(self, name: str, problem: str) -> SpecError:
        return SpecError(self.path, name, problem)

    def string(self, name: str, *, required: bool = False) -> str:
        value = self.content.get(name)
        if value is None:
            if required:
                raise self.fail(name, "missing (required)")
            return ""
        if not isinstance(value, str) or (required and not value.strip()):
            raise self.fail(name, f"must be a non-empty string, got {value!r}")
        return value

    def version(self) -> str:
        value = self.content.get("version", "1")
        if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
            raise self.fail("version", f"must be a string or an integer, got {value!r}")
        return str(value)

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.content.get(name, default)
        if value not in choices:
            raise self.fail(name, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def number(self, name: str, default: float) -> float:
        value = self.content.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise self.fail(name, f"must be a positive number of seconds, got {value!r}")
        return float(value)

    def boolean(self, name: str, default: bool) -> bool:
        value = self.content.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(name, f"must be true or false, got {value!r}")
        return value

    def inputs(self) -> frozenset[str]:
        value = self.content.get("inputs")
        if value is None:
            raise self.fail("inputs", f"missing (required): a list drawn from {', '.join(SPEC_INPUTS)}")
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.fail("inputs", f"must be a list of strings, got {value!r}")
        unknown = [item for item in value if item not in SPEC_INPUTS]
        if unknown:
            extra = " (an external editor never sees the ground truth)" if "target" in unknown else ""
            raise self.fail("inputs", f"unknown input {unknown[0]!r}; choose from {', '.join(SPEC_INPUTS)}{extra}")
        return frozenset(value) | {"image"}

    def command(self) -> tuple[str, ...]:
        value = self.content.get("command")
        if value is None:
            raise self.fail("command", "missing (required): the argv list to run, e.g. [\"python\", \"run.py\", "
                            "\"{source}\"]")
        if isinstance(value, str):
            raise self.fail("command", "must be a list of arguments (argv), not one string: no shell parses it")
        if not isinstance(value, list) or not value:
            raise self.fail("command", f"must be a non-empty list of strings, got {value!r}")
        for k, item in enumerate(value):
            if not isinstance(item, str) or (k == 0 and not item.strip()):
                raise self.fail(f"command[{k}]", f"must be a {'non-empty ' if k == 0 else ''}string, got {item!r}")
        return tuple(value)

    def env(self) -> dict[str, str]:
        value = self.content.get("env", {})
        if not isinstance(value, dict):
            raise self.fail("env", f"must be a table of NAME = \"value\", got {value!r}")
        for key, item in value.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise self.fail(f"env.{key}", "is not a valid environment variable name")
            if not isinstance(item, str):
                raise self.fail(f"env.{key}", f"must be a string, got {item!r}")
        return dict(value)
