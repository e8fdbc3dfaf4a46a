"""The method interface: anything that turns a benchmark case into an edited image.

A method is a dataclass whose fields are its options (set from the CLI with ``--set key=value``), which
declares the case inputs it uses, and which implements :meth:`Method.edit`. Heavy methods load their
weights in :meth:`Method.setup`, called once per run, never per case.

A method only ever sees the inputs it declares: the runner hands it ``case.restricted_to(inputs)``, so a
method that does not declare ``"target"`` cannot peek at the ground truth, and Table 1's input column
(M/P/T/I) is true by construction.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from PIL import Image

from tvbench.cases import Case
from tvbench.errors import ConfigError

# What a method may read from a case. "image" (the source) is always given.
INPUTS = ("image", "mask", "caption", "points", "instruction", "target")
# Table 1 of the paper: M mask, P prompt (caption), T trajectory (drag points), I instruction.
INPUT_LETTERS = {"mask": "M", "caption": "P", "points": "T", "instruction": "I", "target": "GT"}


def input_letters(inputs: frozenset[str] | set[str]) -> str:
    letters = [INPUT_LETTERS[name] for name in INPUTS if name in inputs and name in INPUT_LETTERS]
    return "+".join(letters) or "-"


def restrict_case(case: Case, inputs: frozenset[str]) -> Case:
    """The case as a method declaring ``inputs`` may see it: ground truth and undeclared inputs removed."""
    sees_target = "target" in inputs
    return dataclasses.replace(
        case,
        target=case.target if sees_target else None,
        mask_target=case.mask_target if sees_target else None,
        dense_points=case.dense_points if sees_target else (),
        mask_source=case.mask_source if "mask" in inputs else None,
        points=case.points if "points" in inputs else (),
        instruction=case.instruction if "instruction" in inputs else None,
        caption=case.caption if "caption" in inputs else None,
    )


@dataclasses.dataclass
class Method(ABC):
    """Base class of every editing method. Subclasses are dataclasses; their fields are the options."""

    name: ClassVar[str]
    inputs: ClassVar[frozenset[str]] = frozenset({"image"})
    version: ClassVar[str] = "1"  # bump when the same options would now give different images
    summary: ClassVar[str] = ""

    def setup(self) -> None:
        """Load weights and move them to the device; called once per run before the first edit."""

    @abstractmethod
    def edit(self, case: Case, *, seed: int) -> Image.Image:
        """Return the edited image for ``case`` (restricted to :attr:`inputs`)."""

    def config(self) -> dict[str, Any]:
        """The options that identify this method's outputs (hashed into the run manifest)."""
        return {"method": self.name, "version": self.version, "options": dataclasses.asdict(self)}

    @classmethod
    def options(cls) -> dict[str, dataclasses.Field]:
        return {f.name: f for f in dataclasses.fields(cls) if f.init}

    @classmethod
    def from_options(cls, raw: dict[str, str]) -> "Method":
        """Build from ``--set key=value`` strings, converting each value to the option's declared type."""
        known = cls.options()
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for key, text in raw.items():
            if key not in known:
                choices = ", ".join(known) or "none"
                raise ConfigError(f"method {cls.name!r} has no option {key!r} (options: {choices})")
            values[key] = _convert(cls.name, key, text, hints.get(key, str))
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"method {cls.name!r}: {exc}") from None


def _convert(method: str, key: str, text: str, hint: Any) -> Any:
    """Parse a ``--set`` value as JSON when the option is not a plain string, then check its type."""
    args = typing.get_args(hint)
    allowed = tuple(a for a in args if a is not type(None)) if args else (hint,)
    if str in allowed and len(allowed) == 1:
        return text
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    if value is None and type(None) in args:
        return None
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    base = tuple(typing.get_origin(a) or a for a in allowed)
    if not isinstance(value, base) or (isinstance(value, bool) and bool not in base):
        names = " or ".join(getattr(a, "__name__", str(a)) for a in allowed)
        raise ConfigError(f"method {method!r}: option {key!r} must be {names}, got {text!r}")
    return value
