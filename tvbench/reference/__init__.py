"""Published numbers as reference rows, and how tvbench's scores compare with them.

The paper's tables ship as data (``paper.json`` beside this module): Table 1 (TV-Edit-Bench), Table F.5
(DragBench) and the ablations of Appendix E, digit for digit as printed, each with its citation. A lab ships its
own published numbers as a file in the same format and passes its path wherever ``paper:ID`` is accepted.

The format (JSON)::

    {"format": "tvbench.reference", "version": 1,
     "source": {"title": ..., "authors": ..., "venue": ..., "url": ...},
     "methods": {"PUBLISHED NAME": {"tvbench": "method-name" | null, "note": ..., "runs": ...,
                                    "settings": {"option": "value"}, "settings_source": ...}},
     "metrics": {"PUBLISHED METRIC": {"tvbench": "metric_id" | null, "note": ...}},
     "tables": {"ID": {"table": "Table 1", "title": ..., "where": "Sec. 4.3", "benchmark": ..., "notes": [...],
                       "columns": [{"metric": "PUBLISHED METRIC", "printed": ..., "arrow": "↑" | "↓" | null}],
                       "rows": [{"method": "PUBLISHED NAME", "printed": ..., "values": [".8290", 0.72, ...]}]}}}

``methods`` and ``metrics`` are the one place where a published name meets tvbench's; rows refer to them by the
published name. Values may be numbers or the strings as printed (``".8290"`` keeps its digits; ``"167M"``).
A method or metric tvbench does not have has ``"tvbench": null`` and a note.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Optional, TypedDict

from tvbench.errors import ConfigError

FORMAT = "tvbench.reference"
VERSION = 1
PAPER_PREFIX = "paper:"
PAPER_FILE = "paper.json"
ARROWS = {"↑": True, "↓": False, None: None}

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NO_INTERVAL = "no interval"
NO_VALUE = "no value"  # the metric is in tvbench's summary, but without a value (no case could be scored)

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_SUFFIXES = {"K": 1e3, "M": 1e6, "B": 1e9}


@dataclass(frozen=True)
class PublishedMethod:
    """A published method name and what tvbench runs for it (``tvbench`` None: tvbench does not have it)."""

    name: str
    tvbench: Optional[str]
    runs: str = ""
    note: str = ""
    settings: Mapping[str, str] = field(default_factory=dict)  # options a reproduction passes (--set)
    settings_source: str = ""


@dataclass(frozen=True)
class ReferenceRow:
    """One published cell."""

    tvbench_method: Optional[str]
    published_name: str  # the key of the methods map (one name per method across tables)
    printed_name: str  # the row's label as printed in this table
    metric: Optional[str]  # tvbench's metric id, None where tvbench has none
    published_metric: str
    printed_metric: str
    value: float
    printed: str  # the value as printed (".8290"), or as the file gave it
    higher_is_better: Optional[bool]  # from the printed arrow; None where the column has none

    def to_dict(self) -> dict[str, Any]:
        return {"tvbench_method": self.tvbench_method, "published_name": self.published_name,
                "printed_name": self.printed_name, "metric": self.metric, "published_metric": self.published_metric,
                "printed_metric": self.printed_metric, "value": self.value, "printed": self.printed,
                "higher_is_better": self.higher_is_better}


@dataclass(frozen=True)
class Reference:
    """One published table: its rows (cell by cell) and where it comes from."""

    id: str  # "paper:f5", or "PATH#ID" for a file
    table: str  # "Table F.5"
    title: str
    where: str  # section / page
    benchmark: str
    source: Mapping[str, str]
    notes: tuple[str, ...]
    rows: tuple[ReferenceRow, ...]
    methods: tuple[PublishedMethod, ...]  # the table's methods, in table order

    @property
    def citation(self) -> str:
        """One line: ``Xie et al. 2026, "Title", arXiv ..., Table F.5 (Appendix F ...): title, on DragBench``."""
        src = self.source
        who = src.get("short") or src.get("authors") or "unknown authors"
        parts = [who, f'"{src["title"]}"' if src.get("title") else "", src.get("venue", "")]
        head = ", ".join(p for p in parts if p)
        where = f" ({self.where})" if self.where else ""
        return f"{head}, {self.table}{where}: {self.title}; benchmark: {self.benchmark}"

    def metric_ids(self) -> list[str]:
        """tvbench's metric ids of the table's columns, in column order."""
        seen: dict[str, None] = {}
        for row in self.rows:
            if row.metric:
                seen.setdefault(row.metric)
        return list(seen)

    def method(self, published_name: str) -> PublishedMethod:
        for method in self.methods:
            if method.name == published_name:
                return method
        raise KeyError(published_name)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "table": self.table, "title": self.title, "where": self.where,
                "benchmark": self.benchmark, "source": dict(self.source), "citation": self.citation,
                "notes": list(self.notes), "rows": [row.to_dict() for row in self.rows]}


class Comparison(TypedDict):
    """One (method, metric) cell present in both the reference and tvbench's summary."""

    method: str  # tvbench's method (the summary's key)
    published_name: str
    metric: str
    published: float
    published_printed: str
    tvbench: Optional[float]  # the summary's headline statistic (mean, or pooled mean for DragBench's MD)
    difference: Optional[float]  # tvbench - published
    ci_low: Optional[float]
    ci_high: Optional[float]
    ci_level: Optional[float]
    verdict: str  # reproduced | not reproduced | no interval | no value
    higher_is_better: Optional[bool]
    n: Optional[int]  # cases (or units) tvbench's value stands on
    applicable: Optional[int]  # cases the metric applies to (n < applicable: partial coverage)
    reference: str  # the reference's id


# --- loading -------------------------------------------------------------------------------------------------------


def paper_tables() -> dict[str, dict]:
    """The shipped paper's tables by id (raw data)."""
    return _paper_data()["tables"]


def paper_ids() -> list[str]:
    return [PAPER_PREFIX + key for key in paper_tables()]


def _paper_data() -> dict:
    text = resources.files(__name__).joinpath(PAPER_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def load_reference(spec: str | Path) -> Reference:
    """A published table: ``paper:ID`` (the shipped paper's tables, e.g. ``paper:f5``), or a reference file
    ``PATH`` (with exactly one table) or ``PATH#ID``. Errors are one line (:class:`ConfigError`)."""
    text = str(spec).strip()
    if text.startswith(PAPER_PREFIX):
        key = text[len(PAPER_PREFIX):]
        data = _paper_data()
        if key not in data["tables"]:
            raise ConfigError(f"unknown reference {text!r}: choose {', '.join(paper_ids())}, or a reference file")
        return _build(data, key, text, PAPER_FILE)
    path_text, sep, key = text.rpartition("#") if "#" in text else (text, "", "")
    path = Path(path_text)
    if not path.is_file():
        hint = f"; the paper's tables are {', '.join(paper_ids())}" if not path.suffix else ""
        raise ConfigError(f"reference {text!r}: no such file{hint}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (a reference is JSON)") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    _check_top(data, path)
    tables = data["tables"]
    if not sep:
        if len(tables) != 1:
            raise ConfigError(f"{path}: holds {len(tables)} tables; pick one with {path}#ID "
                              f"(ids: {', '.join(tables)})")
        key = next(iter(tables))
    elif key not in tables:
        raise ConfigError(f"{path}: no table {key!r} (ids: {', '.join(tables)})")
    return _build(data, key, f"{path}#{key}", str(path))


def _check_top(data: Any, where: Path | str) -> None:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a JSON object with format {FORMAT!r}")
    if data.get("format") != FORMAT:
        raise ConfigError(f"{where}: format must be {FORMAT!r}, got {data.get('format')!r}")
    if data.get("version") != VERSION:
        raise ConfigError(f"{where}: version {data.get('version')!r} is not supported (this tvbench reads {VERSION})")
    for key in ("methods", "metrics", "tables"):
        if not isinstance(data.get(key), dict) or not data.get(key):
            raise ConfigError(f"{where}: '{key}' must be a non-empty object")
    if "source" in data and not isinstance(data["source"], dict):
        raise ConfigError(f"{where}: 'source' must be an object")


def parse_value(value: Any) -> float:
    """A published value: a number, or a string as printed (``".8290"``, ``"32.13"``, ``"167M"``, ``"1.40B"``)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number")
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        scale = 1.0
        if text[-1:].upper() in _SUFFIXES:
            scale, text = _SUFFIXES[text[-1].upper()], text[:-1]
        if _NUMBER.match(text):
            return float(text) * scale
    raise ValueError(f"{value!r} is not a number")


def _known_metrics() -> Optional[dict[str, bool]]:
    """tvbench's metric ids and directions, or None when the registry cannot be read."""
    try:
        from tvbench.metrics import METRICS

        return {name: bool(METRICS.load(name).higher_is_better) for name in METRICS.names()}
    except Exception:  # pragma: no cover - a broken plugin must not stop a reference from loading
        return None


def _build(data: dict, key: str, ref_id: str, where: str) -> Reference:
    _check_top(data, where)
    table = data["tables"][key]
    here = f"{where}: table {key!r}"
    if not isinstance(table, dict):
        raise ConfigError(f"{here}: must be an object")
    for name in ("columns", "rows"):
        if not isinstance(table.get(name), list) or not table.get(name):
            raise ConfigError(f"{here}: '{name}' must be a non-empty list")
    methods_map, metrics_map = data["methods"], data["metrics"]
    known = _known_metrics()
    columns = []
    for index, column in enumerate(table["columns"]):
        if not isinstance(column, dict) or "metric" not in column:
            raise ConfigError(f"{here}: column {index + 1} needs a 'metric' (a key of 'metrics')")
        name = column["metric"]
        if name not in metrics_map:
            raise ConfigError(f"{here}: column {index + 1}: metric {name!r} is not in 'metrics' "
                              f"(it has {', '.join(map(repr, metrics_map))})")
        entry = metrics_map[name]
        tv = entry.get("tvbench") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or "tvbench" not in entry or (tv is not None and not isinstance(tv, str)):
            raise ConfigError(f"{where}: metrics[{name!r}] needs 'tvbench': a tvbench metric id or null")
        arrow = column.get("arrow")
        if arrow not in ARROWS:
            raise ConfigError(f"{here}: column {index + 1} ({name}): arrow must be '↑', '↓' or null, got {arrow!r}")
        higher = ARROWS[arrow]
        if tv is not None and known is not None:
            if tv not in known:
                from tvbench.registry import suggest

                raise ConfigError(f"{where}: metrics[{name!r}]: {tv!r} is not a tvbench metric{suggest(tv, known)}")
            if higher is not None and higher != known[tv]:
                raise ConfigError(f"{here}: column {index + 1} ({name}) is printed {arrow} but tvbench's {tv} is "
                                  f"{'higher' if known[tv] else 'lower'} is better")
        columns.append((name, str(column.get("printed", name)), tv, higher))
    rows: list[ReferenceRow] = []
    order: list[PublishedMethod] = []
    for index, row in enumerate(table["rows"]):
        if not isinstance(row, dict) or "method" not in row or "values" not in row:
            raise ConfigError(f"{here}: row {index + 1} needs 'method' and 'values'")
        method = _method(methods_map, row["method"], f"{here}: row {index + 1}", where)
        values = row["values"]
        if not isinstance(values, list) or len(values) != len(columns):
            count = len(values) if isinstance(values, list) else "no list of"
            raise ConfigError(f"{here}: row {index + 1} ({method.name}) has {count} values for {len(columns)} columns")
        if method not in order:
            order.append(method)
        for (metric, printed_metric, tv, higher), raw in zip(columns, values):
            try:
                number = parse_value(raw)
            except ValueError as exc:
                raise ConfigError(f"{here}: row {index + 1} ({method.name}), column {metric}: {exc}") from None
            rows.append(ReferenceRow(method.tvbench, method.name, str(row.get("printed", method.name)), tv, metric,
                                     printed_metric, number, raw if isinstance(raw, str) else repr(raw), higher))
    notes = table.get("notes") or []
    if not isinstance(notes, list):
        raise ConfigError(f"{here}: 'notes' must be a list of strings")
    return Reference(id=ref_id, table=str(table.get("table", key)), title=str(table.get("title", "")),
                     where=str(table.get("where", "")), benchmark=str(table.get("benchmark", "unknown")),
                     source={k: str(v) for k, v in (data.get("source") or {}).items()},
                     notes=tuple(str(n) for n in notes), rows=tuple(rows), methods=tuple(order))


def _method(methods_map: dict, name: Any, here: str, where: str) -> PublishedMethod:
    if not isinstance(name, str) or name not in methods_map:
        raise ConfigError(f"{here}: method {name!r} is not in 'methods'")
    entry = methods_map[name]
    tv = entry.get("tvbench") if isinstance(entry, dict) else None
    if not isinstance(entry, dict) or "tvbench" not in entry or (tv is not None and not isinstance(tv, str)):
        raise ConfigError(f"{where}: methods[{name!r}] needs 'tvbench': a tvbench method name or null")
    settings = entry.get("settings") or {}
    if not isinstance(settings, dict):
        raise ConfigError(f"{where}: methods[{name!r}]: 'settings' must be an object of option: value")
    return PublishedMethod(name=name, tvbench=tv, runs=str(entry.get("runs", "")), note=str(entry.get("note", "")),
                           settings={str(k): v if isinstance(v, str) else json.dumps(v) for k, v in settings.items()},
                           settings_source=str(entry.get("settings_source", "")))


# --- comparing -----------------------------------------------------------------------------------------------------


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _count(value: Any) -> Optional[int]:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def compare_to_reference(summary: dict, reference: Reference) -> list[Comparison]:
    """Every (method, metric) cell present in both: the published value, tvbench's headline value, their difference
    (tvbench - published) and a verdict.

    A summary's method is matched by its key (the run name), so a variant run (``clipdrag-unit``) is never
    compared as the original. The verdict is ``reproduced`` when the published value lies inside tvbench's
    confidence interval (bounds included), ``not reproduced`` when outside, ``no interval`` when the summary has
    none, and ``no value`` when the metric was scored but has no value (no case could be scored). The published
    number carries no interval of its own, so ``reproduced`` means "not distinguishable at this level", nothing more.
    """
    metrics_info = summary.get("metrics") or {}
    methods = summary.get("methods") or {}
    out: list[Comparison] = []
    for row in reference.rows:
        if row.tvbench_method is None or row.metric is None:
            continue
        stats = ((methods.get(row.tvbench_method) or {}).get("metrics") or {}).get(row.metric)
        if stats is None:
            continue
        headline = (metrics_info.get(row.metric) or {}).get("headline", "mean")
        value = None if stats.get("headline_status") == "undefined" else _number(stats.get(headline))
        ci = stats.get("ci") or {}
        low, high = _number(ci.get("low")), _number(ci.get("high"))
        if value is None:
            verdict = NO_VALUE
        elif low is None or high is None:
            verdict = NO_INTERVAL
        else:
            verdict = REPRODUCED if low <= row.value <= high else NOT_REPRODUCED
        out.append(Comparison(method=row.tvbench_method, published_name=row.published_name, metric=row.metric,
                              published=row.value, published_printed=row.printed, tvbench=value,
                              difference=None if value is None else value - row.value,
                              ci_low=low if value is not None else None, ci_high=high if value is not None else None,
                              ci_level=_number(ci.get("level")), verdict=verdict,
                              higher_is_better=row.higher_is_better, n=_count(stats.get("n")),
                              applicable=_count(stats.get("applicable")), reference=reference.id))
    return out


def uncompared(summary: dict, reference: Reference) -> list[str]:
    """What of the table the summary cannot be compared on: one line naming the table's methods (that tvbench has)
    absent from the scores, and one per method present without some of the table's metrics."""
    methods = summary.get("methods") or {}
    absent, lines = [], []
    for method in reference.methods:
        if method.tvbench is None:
            continue
        if method.tvbench not in methods:
            absent.append(method.tvbench)
            continue
        wanted = [r.metric for r in reference.rows if r.published_name == method.name and r.metric]
        have = methods[method.tvbench].get("metrics") or {}
        missing = [m for m in dict.fromkeys(wanted) if m not in have]
        if missing:
            lines.append(f"{method.tvbench} ({method.name}): not scored: {', '.join(missing)}")
    if absent:
        lines.insert(0, f"not in the scores: {', '.join(absent)}")
    return lines


__all__ = ["ARROWS", "Comparison", "FORMAT", "NOT_REPRODUCED", "NO_INTERVAL", "NO_VALUE", "PAPER_PREFIX",
           "PublishedMethod", "REPRODUCED", "Reference", "ReferenceRow", "compare_to_reference", "load_reference",
           "paper_ids", "paper_tables", "parse_value", "uncompared"]
