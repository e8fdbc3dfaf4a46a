"""Errors a user can act on.

Every error the CLI shows is a single line that names the thing at fault (a case, a file, an option)
and the problem. Library code raises these; the CLI prints ``str(error)`` and exits non-zero, without a
traceback. Anything that is not a :class:`TvbenchError` is a bug in tvbench.
"""

from __future__ import annotations


class TvbenchError(Exception):
    """Base class for errors caused by input, configuration or environment, not by a bug."""

    exit_code = 2


class CaseError(TvbenchError):
    """A benchmark case is malformed; names the case and the field."""

    def __init__(self, case_id: str | None, field: str, problem: str, *, line: int | None = None):
        self.case_id = case_id
        self.field = field
        self.problem = problem
        self.line = line
        where = f"case {case_id!r}" if case_id is not None else "case"
        if line is not None:
            where = f"line {line}: {where}"
        super().__init__(f"{where}: {field}: {problem}")


class BenchmarkError(TvbenchError):
    """A benchmark cannot be read at all (missing file, unreadable format, ...)."""


class InvalidBenchmark(TvbenchError):
    """A benchmark whose cases failed validation; carries every error, one line each."""

    def __init__(self, source: str, errors: list[CaseError]):
        self.source = source
        self.errors = errors
        first = errors[0] if errors else "no cases"
        more = f" (and {len(errors) - 1} more error(s); run `tvbench validate {source}`)" if len(errors) > 1 else ""
        super().__init__(f"{source}: {first}{more}")


class UnknownNameError(TvbenchError):
    """A registry lookup failed; the message carries close matches."""


class UnavailableError(TvbenchError):
    """A component is known but cannot be used here (missing optional dependency, weights unreachable)."""


class WeightsUnavailable(UnavailableError):
    """Hub weights that cannot be had here (not cached while offline, gated, unknown): says how to get them.

    The code that looks for weights knows the hub id but not the option that named it, so ``option`` (e.g.
    ``--set model=PATH``) is filled in by the layer that does: the command, or a method's check and set-up
    (:func:`tvbench.methods.base.check_method`), before the message is shown.
    """

    def __init__(self, problem: str, *, spec: str, fix: str, local: str = "folder", option: str | None = None,
                 note: str = ""):
        super().__init__(problem)
        self.problem, self.spec, self.fix, self.local, self.option, self.note = problem, spec, fix, local, option, note

    def __str__(self) -> str:
        where = f" with {self.option}" if self.option else ""
        note = f"; {self.note}" if self.note else ""
        return f"{self.problem}; {self.fix}, or pass a local {self.local}{where}{note}"


class ConfigError(TvbenchError):
    """A command-line option or method setting is invalid."""


class ResultsError(TvbenchError):
    """A results folder is inconsistent with the requested operation."""


def one_line(exc: BaseException) -> str:
    """A one-line description of any exception: our own messages as they are, others prefixed by their type."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, TvbenchError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def torch_pair_mismatch(exc: BaseException) -> str | None:
    """One line with the fix when ``exc`` (or what it wraps) is torchvision failing against another torch, else None.

    A torchvision built for another torch fails at import with ``operator torchvision::nms does not exist`` (its
    compiled operators do not register), often re-raised by transformers or diffusers; it is the install's to fix,
    not a bug. torchvision 0.N is built for torch 2.(N - 15) (0.20 for 2.5, 0.24 for 2.9).
    """
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 8:  # the exception and what it wraps
        seen.append(current)
        current = current.__cause__ or current.__context__
    text = " ".join(str(item) for item in seen)
    if "torchvision::" not in text or "does not exist" not in text:
        return None
    from importlib.metadata import PackageNotFoundError, version

    def installed(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "(not installed)"

    torch, vision = installed("torch"), installed("torchvision")
    release, _, local = torch.partition("+")
    parts = release.split(".")
    fix = "reinstall both together: pip install --force-reinstall torch torchvision"
    if len(parts) >= 2 and parts[0] == "2" and parts[1].isdigit():
        index = f" --index-url https://download.pytorch.org/whl/{local}" if local else ""
        fix = (f'install the torchvision made for torch {parts[0]}.{parts[1]}: pip install "torchvision==0.'
               f'{int(parts[1]) + 15}.*"{index} (or reinstall both together from one index)')
    return (f"torch {torch} and torchvision {vision} do not match (operator torchvision::... does not exist: this "
            f"torchvision was built for another torch); {fix}")
