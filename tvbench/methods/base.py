"""The method interface: anything that turns a benchmark case into an edited image.

A method is a dataclass whose fields are its options (set from the CLI with ``--set key=value``), which
declares the case inputs it uses, and which implements :meth:`Method.edit`. Heavy methods load their
weights in :meth:`Method.setup`, called once per run with the run's :class:`Runtime` (device, dtype, batch
size), and drop them in :meth:`Method.teardown`, so ``tvbench run -m a,b`` holds one model at a time.

A method only ever sees the inputs it declares: the runner hands it ``case.restricted_to(inputs)``, so a
method that does not declare ``"target"`` cannot peek at the ground truth, and Table 1's input column
(M/P/T/I) is true by construction.

What ``edit`` may return:

- a ``PIL.Image`` (the edit), or
- an :class:`EditResult`: the image plus per-case ``facts`` for the manifest (native output size, steps,
  tokens, cost, seconds per phase), or a refusal (``EditResult.refusal(reason)``: a safety filter, an API
  that declined). Refusals are recorded with their own status and not retried unless asked.

Options that cannot change the images (offload, API concurrency, ...) are declared with
:func:`runtime_option`: they are recorded but left out of the config hash, so resuming with other values is
the same run. Device and batch size are not options at all: they come with the :class:`Runtime`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import typing
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Hashable, Iterator, Sequence

from PIL import Image

from tvbench.cases import Case
from tvbench.errors import (ConfigError, TvbenchError, UnavailableError, WeightsUnavailable, one_line,
                            torch_pair_mismatch)

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


RUNTIME_OPTION = "tvbench.runtime"  # field metadata key: the option cannot change the images


def runtime_option(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING) -> Any:
    """A method option that cannot change the images (offload, API concurrency, ...): not hashed.

    ``offload: bool = runtime_option(False)``. The value is recorded in the manifest, but a run resumed with
    another value is the same run.
    """
    return dataclasses.field(default=default, default_factory=default_factory, metadata={RUNTIME_OPTION: True})


@dataclasses.dataclass(frozen=True)
class Runtime:
    """Where and how a run executes a method; chosen per run (``--device``, ``--dtype``, ``--batch-size``,
    ``--threads``).

    ``device`` is resolved (``cpu``, ``cuda:0``, ``mps``). ``dtype`` is ``None`` for methods that ignore it
    (:attr:`Method.uses_dtype` false); for the others the runner fills in the method's choice before
    :meth:`Method.setup`. ``threads`` is torch's CPU thread count, given to torch before :meth:`Method.setup`
    (``None``: left as it is; see :mod:`tvbench.threads`). The device, batch size and threads never enter a run's
    identity; the dtype does, since it changes the images.
    """

    device: str = "cpu"
    dtype: str | None = None
    batch_size: int = 1
    threads: int | None = None

    def describe(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class EditResult:
    """An edit with what the method knows about it, or a refusal.

    ``facts`` go into the run manifest per case and must be JSON values. Conventional keys: ``native_size``
    ``[w, h]`` (the pipeline's output size before mapping back to the source's), ``steps``, ``phases``
    (seconds per phase, e.g. ``{"load": 0.1, "denoise": 3.2}``), ``tokens``, ``cost_usd``.
    """

    image: Image.Image | None = None
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)
    refused: str | None = None  # why the method (a safety filter, an API) declined; image is None then

    @classmethod
    def refusal(cls, reason: str, **facts: Any) -> "EditResult":
        return cls(image=None, facts=facts, refused=reason or "refused")


Outcome = typing.Union[Image.Image, EditResult]


def at_source_size(image: Image.Image, size: tuple[int, int]) -> tuple[Image.Image, list[int]]:
    """An editor's output mapped back to the source's ``(w, h)`` (Lanczos), and the size it came at.

    Editors work at their own resolution (about one megapixel, an API's fixed sizes); the benchmark compares
    at the source's. The second value is the ``native_size`` fact.
    """
    native = [image.width, image.height]
    return (image if image.size == tuple(size) else image.resize(tuple(size), Image.Resampling.LANCZOS)), native


def case_seed(run_seed: int, case_id: str) -> int:
    """The seed of one case: a hash of the run seed and the case id (< 2**63, fits ``torch.Generator``).

    Batches, shards and reruns in any order therefore give each case the same noise.
    """
    digest = hashlib.sha256(f"{int(run_seed)}/{case_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclasses.dataclass
class Method(ABC):
    """Base class of every editing method. Subclasses are dataclasses; their fields are the options."""

    name: ClassVar[str]
    inputs: ClassVar[frozenset[str]] = frozenset({"image"})
    version: ClassVar[str] = "1"  # bump when the same options would now give different images
    summary: ClassVar[str] = ""
    uses_dtype: ClassVar[bool] = False  # True: --dtype applies (and enters the run's identity)
    default_dtype: ClassVar[str | None] = None  # without --dtype; None: bfloat16 on CUDA, else float32
    uses_device: ClassVar[bool] = True  # False: the work happens elsewhere (an API); --device auto imports no torch
    max_batch_size: ClassVar[int] = 1  # > 1: edit_batch() handles up to this many cases at once
    oom_hint: ClassVar[str] = ""  # what else to try when setup runs out of memory, e.g. "--set offload=model"
    runtime: ClassVar[Runtime] = Runtime()  # set per run by the runner, before setup()

    def resolve_runtime(self, runtime: Runtime) -> Runtime:
        """The runtime this method will run under: the dtype filled in (:attr:`default_dtype`, else bfloat16 on
        CUDA and float32 elsewhere)."""
        if not self.uses_dtype:
            return dataclasses.replace(runtime, dtype=None)
        if runtime.dtype is None:
            default = self.default_dtype or ("bfloat16" if runtime.device.startswith("cuda") else "float32")
            return dataclasses.replace(runtime, dtype=default)
        return runtime

    def default_run_name(self) -> str:
        """The run folder's name without ``--run-name``: the method's name, or a variant's (a departure from the
        original that must not sit in the report under the original's name)."""
        return self.name

    def check(self) -> None:
        """Check what is cheap to check (files and folders the options name, their headers, option values) and
        raise on the first problem; called before any method of a run is set up, so a typo in a path fails in a
        second, not after a backbone of tens of gigabytes has loaded. Must not load models."""

    def setup(self) -> None:
        """Load weights onto ``self.runtime.device``; called once per run before the first edit."""

    def teardown(self) -> None:
        """Drop what :meth:`setup` loaded (the runner then frees GPU memory); called once per run at its end."""

    @abstractmethod
    def edit(self, case: Case, *, seed: int) -> Outcome:
        """Return the edited image (or an :class:`EditResult`) for ``case`` (restricted to :attr:`inputs`).

        ``seed`` is this case's own seed (:func:`case_seed`), the same in a batch, a shard or a rerun.
        """

    def batch_key(self, case: Case) -> Hashable:
        """Cases with equal keys may share a batch (e.g. the pipeline's working size); ``None``: any case."""
        return None

    def edit_batch(self, cases: Sequence[Case], seeds: Sequence[int]) -> list[Outcome | Exception]:
        """Edit several cases at once; must equal editing them one by one. Default: one by one.

        An item may be an exception instead of an outcome: that case failed, the others stand (an API
        editor sending requests concurrently). Raising fails the batch, which the runner then redoes case
        by case.
        """
        return [self.edit(case, seed=seed) for case, seed in zip(cases, seeds)]

    def config(self) -> dict[str, Any]:
        """What identifies this method's outputs (hashed into the run manifest): options, version, dtype.

        Options declared with :func:`runtime_option` are left out; see :meth:`runtime_options`.
        """
        runtime_only = self.runtime_options()
        options = {key: value for key, value in dataclasses.asdict(self).items() if key not in runtime_only}
        config = {"method": self.name, "version": self.version, "options": options}
        if self.runtime.dtype is not None:
            config["dtype"] = self.runtime.dtype
        return config

    def runtime_options(self) -> dict[str, Any]:
        """The options that cannot change the images, with their values (recorded, not hashed)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata.get(RUNTIME_OPTION)}

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


def check_method(method: Method) -> None:
    """Run ``method.check()`` once; a failure becomes one line naming the method (see :func:`setup_method`)."""
    if getattr(method, "_checked", False):
        return
    with _one_line_failure(method, "check"):
        method.check()
    method._checked = True  # type: ignore[attr-defined]


def setup_method(method: Method) -> None:
    """Run ``method.setup()``; any failure becomes one line naming the method and, where known, the fix.

    Missing weights, a gated repository or an out-of-memory GPU are the user's to fix (exit 2), so they must
    not surface as a traceback or an "internal error", whatever method raised them.
    """
    with _one_line_failure(method, f"setup on {method.runtime.device}"):
        method.setup()


def option_naming(method: Method, value: str) -> str | None:
    """The ``--set`` option whose value is ``value`` (weights the method could not find), as the user types it."""
    for name in method.options():
        if getattr(method, name, None) == value:
            return f"--set {name}=PATH"
    return None


@contextlib.contextmanager
def _one_line_failure(method: Method, stage: str) -> Iterator[None]:
    """Any failure inside as one line that starts with the method's name: the user's to fix (exit 2)."""
    prefix = f"method {method.name!r}"
    try:
        yield
    except WeightsUnavailable as exc:  # the method knows which of its options named the weights
        exc.option = exc.option or option_naming(method, exc.spec)
        raise UnavailableError(f"{prefix}: {exc}") from None
    except TvbenchError as exc:
        text = str(exc)
        raise type(exc)(text if text.startswith(prefix) else f"{prefix}: {text}") from None
    except Exception as exc:  # torch's OutOfMemoryError, the libraries' OSErrors, ...
        where = f"{prefix}: {stage} failed"
        mismatch = torch_pair_mismatch(exc)
        if mismatch:
            raise UnavailableError(f"{where}: {mismatch}") from None
        if "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError":
            hints = ", ".join(h for h in (method.oom_hint, "--dtype bfloat16", "a device with more memory") if h)
            raise UnavailableError(f"{where}: out of memory; try {hints}") from None
        raise UnavailableError(f"{where}: {one_line(exc)}") from None


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
