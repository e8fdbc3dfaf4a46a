"""What reproducing a published table takes here: per method, whether tvbench has it and can run it, what it needs,
the settings it would run with, and a GPU-hours figure where tvbench's README states a per-edit cost.

Used by ``tvbench reproduce`` (``--dry-run`` prints this plan; a real run follows it). Nothing here loads weights:
availability is the registry's (packages installed, external specs resolvable), options are checked by building the
method's dataclass, and keys are looked up in the environment.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from tvbench.errors import ConfigError, TvbenchError, one_line
from tvbench.reference import PublishedMethod, Reference

READY = "ready"
CANNOT_RUN = "cannot run"
NOT_IN_TVBENCH = "not in tvbench"

# Options that name weights (hub ids, folders, files), listed under "needs".
WEIGHT_OPTIONS = ("model", "vae", "clip_model", "lora", "lightning_lora", "controller")
# Case fields a method may declare, and where a case keeps them (for "missing on N of M cases").
CASE_INPUTS = {"mask": "mask_source", "caption": "caption", "points": "points", "instruction": "instruction"}
EXTERNAL_HINT = ("register its method spec (--method-spec FILE, or a folder on TVBENCH_METHOD_PATH); "
                 "see the README, 'Bring an external drag method'")


@dataclass(frozen=True)
class CostFact:
    """A per-edit GPU cost the README states (never measured here), with where it comes from."""

    seconds: float
    bound: str  # "about" or "at least" (only part of the edit is stated)
    what: str


# Only what README.md states (section "Drag methods", paragraph "Cost"); every other method is "unknown".
COST_FACTS: dict[str, CostFact] = {
    "gooddrag": CostFact(77.0, "about", "LoRA about 17 s + drag about a minute per 512x512 edit on one A100 "
                                        "(GoodDrag's README, quoted in tvbench's README)"),
    "dragdiffusion": CostFact(20.0, "at least", "the LoRA alone, about 20 s per 512x512 edit on one A100 "
                                                "(DragDiffusion's README, quoted in tvbench's README); the drag's "
                                                "time is not stated"),
    "lightningdrag": CostFact(1.0, "about", "about 1 s per edit (LightningDrag's paper, quoted in tvbench's "
                                            "README; GPU not named)"),
}


@dataclass
class PlanItem:
    published_name: str
    method: Optional[str]  # tvbench's name, None where tvbench has none
    status: str  # ready | cannot run | not in tvbench
    reason: str = ""  # why it cannot run (one line)
    runs: str = ""  # native, external spec, API editor, ...
    inputs: str = ""  # Table 1 letters of what tvbench's method reads
    needs: list[str] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)  # what the reproduction passes (--set)
    settings_source: str = ""
    options: Optional[dict[str, Any]] = None  # every option it would run with (defaults + settings)
    estimate: str = "unknown"
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def select_methods(reference: Reference, names: Sequence[str] | None) -> list[PublishedMethod]:
    """The table's methods, or those ``names`` picks (tvbench or published names, any case), in table order."""
    if not names:
        return list(reference.methods)
    by_name: dict[str, PublishedMethod] = {}
    for method in reference.methods:
        by_name[method.name.lower()] = method
        if method.tvbench:
            by_name[method.tvbench.lower()] = method
    picked: list[PublishedMethod] = []
    for name in names:
        method = by_name.get(name.strip().lower())
        if method is None:
            choices = ", ".join(m.tvbench or repr(m.name) for m in reference.methods)
            raise ConfigError(f"--methods {name!r}: not a method of {reference.table} (its methods: {choices})")
        if method not in picked:
            picked.append(method)
    return [method for method in reference.methods if method in picked]  # the table's order


def parse_overrides(items: Sequence[str], reference: Reference) -> dict[str, dict[str, str]]:
    """``["tvedit-kontext:controller=runs/k"]`` -> ``{"tvedit-kontext": {"controller": "runs/k"}}``."""
    known = {m.tvbench for m in reference.methods if m.tvbench}
    out: dict[str, dict[str, str]] = {}
    for item in items:
        head, sep, value = item.partition("=")
        method, colon, key = head.partition(":")
        if not sep or not colon or not method.strip() or not key.strip():
            raise ConfigError(f"--set {item!r}: expected METHOD:KEY=VALUE, e.g. tvedit-kontext:controller=runs/k")
        if method.strip() not in known:
            raise ConfigError(f"--set {item!r}: {method.strip()!r} is not a method of {reference.table} "
                              f"(its tvbench methods: {', '.join(sorted(known))})")
        out.setdefault(method.strip(), {})[key.strip()] = value
    return out


def estimate(method: str | None, n_edits: int, uses_device: bool | None = None) -> str:
    """GPU hours for ``n_edits`` from the README's cost facts, or 'unknown' (never a guess)."""
    if uses_device is False:
        return "no GPU (the edit runs remotely)"
    fact = COST_FACTS.get(method or "")
    if fact is None:
        return "unknown (the README states no per-edit time)"
    hours = fact.seconds * n_edits / 3600.0
    sign = "≈" if fact.bound == "about" else "≥"
    return f"{sign} {hours:.2g} GPU-h for {n_edits} edits ({fact.what})"


def _missing_inputs(inputs: frozenset[str], cases: Sequence[Any]) -> list[str]:
    notes = []
    for name, attribute in CASE_INPUTS.items():
        if name not in inputs or not cases:
            continue
        missing = sum(1 for case in cases if not getattr(case, attribute, None))
        if missing:
            notes.append(f"{name} missing on {missing} of {len(cases)} cases")
    return notes


def plan_method(published: PublishedMethod, overrides: Mapping[str, str] | None = None,
                cases: Sequence[Any] = ()) -> PlanItem:
    """The plan for one published method: status, needs, settings, estimate."""
    from tvbench.methods import METHODS, create_method, input_letters
    from tvbench.methods.base import RUNTIME_OPTION

    item = PlanItem(published.name, published.tvbench, READY, runs=published.runs, note=published.note,
                    settings={**published.settings, **(overrides or {})},
                    settings_source=published.settings_source or "the paper states none; the method's defaults")
    if overrides:
        item.settings_source += f"; given here: {', '.join(f'{k}={v}' for k, v in overrides.items())}"
    if published.tvbench is None:
        item.status, item.reason = NOT_IN_TVBENCH, published.note or "tvbench has no method for it"
        item.estimate = "-"
        return item
    name = published.tvbench
    item.estimate = estimate(name, len(cases))
    if name not in METHODS.names():
        item.status, item.reason = CANNOT_RUN, f"no method {name!r} is registered: {EXTERNAL_HINT}"
        return item
    status = METHODS.availability(name)
    entry = METHODS.entry(name)
    if not status.available:
        # the registry's hint is an install command for a missing package; a spec's "reinstall" hint does not help
        hint = f" ({status.hint})" if status.hint.startswith("pip install") and status.hint not in status.reason else ""
        item.status, item.reason = CANNOT_RUN, f"{status.reason}{hint}"
        return item
    cls = METHODS.load(name)
    inputs = frozenset(getattr(cls, "inputs", frozenset()))
    item.inputs = input_letters(inputs)
    item.estimate = estimate(name, len(cases), getattr(cls, "uses_device", True))
    try:
        method = create_method(name, item.settings)
    except TvbenchError as exc:
        item.status, item.reason = CANNOT_RUN, one_line(exc)
        return item
    runtime_only = {f.name for f in dataclasses.fields(method) if f.metadata.get(RUNTIME_OPTION)}
    item.options = {k: v for k, v in dataclasses.asdict(method).items() if k not in runtime_only}
    needs = [f"inputs {item.inputs}"] + _missing_inputs(inputs, cases)
    if entry.requires:
        needs.append(f"packages {', '.join(entry.requires)}")
    weights = [f"{key}={item.options[key]}" for key in WEIGHT_OPTIONS
               if isinstance(item.options.get(key), str) and item.options[key]]
    if weights:
        needs.append(f"weights {', '.join(weights)}")
    keys = tuple(getattr(cls, "key_variables", ()) or ())
    if keys:
        found = [k for k in keys if os.environ.get(k, "").strip()]
        needs.append(f"API key in {' or '.join(keys)} ({'set: ' + found[0] if found else 'not set'})")
        if not found:
            item.status, item.reason = CANNOT_RUN, f"needs an API key: set {' or '.join(keys)}"
    if entry.origin != "tvbench":
        needs.append(f"from {entry.origin}")
    item.needs = needs
    return item


def build_plan(reference: Reference, names: Sequence[str] | None = None,
               overrides: Mapping[str, Mapping[str, str]] | None = None, cases: Sequence[Any] = ()) -> list[PlanItem]:
    """One :class:`PlanItem` per method of the table (or of ``names``), in table order."""
    overrides = overrides or {}
    return [plan_method(m, overrides.get(m.tvbench or ""), cases) for m in select_methods(reference, names)]


def format_plan(items: Sequence[PlanItem]) -> list[str]:
    """The plan as plain lines (``--dry-run``)."""
    lines = []
    for item in items:
        name = item.method or "-"
        lines.append(f"{item.published_name} -> {name}: {item.status}" + (f" ({item.runs})" if item.runs else ""))
        if item.reason:
            lines.append(f"    why: {item.reason}")
        if item.needs:
            lines.append(f"    needs: {'; '.join(item.needs)}")
        if item.options is not None:
            options = ", ".join(f"{k}={v}" for k, v in item.options.items()) or "none"
            lines.append(f"    settings ({item.settings_source}): {options}")
        elif item.settings:
            lines.append(f"    settings ({item.settings_source}): "
                         f"{', '.join(f'{k}={v}' for k, v in item.settings.items())}")
        lines.append(f"    estimate: {item.estimate}")
        if item.note and item.note != item.reason:
            lines.append(f"    note: {item.note}")
    return lines


__all__ = ["CANNOT_RUN", "COST_FACTS", "CostFact", "NOT_IN_TVBENCH", "PlanItem", "READY", "build_plan", "estimate",
           "format_plan", "parse_overrides", "plan_method", "select_methods"]
