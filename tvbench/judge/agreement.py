"""How the judge agrees with people: ``tvbench judge agreement RATINGS.csv --results RESULTS``.

Ratings CSV (UTF-8, a header row, one rating per row; other columns are ignored):

    case,method,metric,rater,grade
    case-0,tps-warp,pf,alice,3

``metric`` is a judge metric of RESULTS/scores.jsonl (``pf``, ``cp``, ``pf_drag``, ``cp_drag``; any case),
``grade`` an integer 0-4 on the judge's rubric (a blank grade is skipped: not rated), ``rater`` anyone's label.
One rating per (case, method, metric, rater).

An *item* is a (case, method) pair of one metric. The judge's grade of an item is read from its scores.jsonl row
(``judge.scores``, one per repeat; else ``value * 4``); rows that are not ``ok`` have none. Per metric:
  - Spearman's rho and Kendall's tau-b (both with ties) between the judge's grade and the people's, over the
    items both graded; with several repeats or raters, each side's mean grade of the item;
  - exact and within-one agreement: per item, the share of (judge repeat, rating) pairs whose grades are equal
    (differ by at most one), averaged over the items;
  - where two or more people rated, Krippendorff's alpha among them (ordinal by default, or interval or nominal:
    the output names it), over every item with at least two ratings, the judge left out.
Intervals are bootstrap intervals resampling the items (as ``tvbench score`` resamples cases): BCa by default
(:mod:`tvbench.analysis.bootstrap`), seeded, and none below :data:`~tvbench.analysis.bootstrap.MIN_UNITS` items.

The statistics use numpy only. Correlations are computed from the contingency table of the two sides' grades
(midranks for Spearman, concordant and discordant pairs for tau-b), so each bootstrap replicate costs a table,
not a sort; Krippendorff's alpha from the coincidence matrix (Krippendorff 2011, "Computing Krippendorff's
Alpha-Reliability"), each replicate summing the resampled units' contributions.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tvbench.analysis.bootstrap import (MIN_UNITS, BootstrapSettings, Units, check_settings, confidence_interval,
                                        interval_from)
from tvbench.errors import ConfigError, ResultsError

COLUMNS = ("case", "method", "metric", "rater", "grade")
GRADES = range(0, 5)
ALPHA_LEVELS = ("ordinal", "interval", "nominal")
_BLOCK = 2_000_000  # table cells held at once per bootstrap block


# --- the statistics -------------------------------------------------------------------------------------------------

def _table(x, y) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(one-hot of each observation's cell (n, Lx*Ly), the table (Lx, Ly), x levels, y levels)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("x and y must be 1-D and of the same length")
    xv, xi = np.unique(x, return_inverse=True)
    yv, yi = np.unique(y, return_inverse=True)
    cells = xi * len(yv) + yi
    onehot = np.zeros((len(x), len(xv) * len(yv)))
    onehot[np.arange(len(x)), cells] = 1.0
    return onehot, onehot.sum(axis=0).reshape(len(xv), len(yv)), xv, yv


def _spearman_tables(tables: np.ndarray) -> np.ndarray:
    """Spearman's rho (midranks, as scipy.stats.spearmanr) of contingency tables ``(..., Lx, Ly)``; nan where a
    side is constant."""
    rows, cols = tables.sum(axis=-1), tables.sum(axis=-2)
    n = rows.sum(axis=-1)
    rx = np.cumsum(rows, axis=-1) - rows + (rows + 1.0) / 2.0  # midrank of each x level
    ry = np.cumsum(cols, axis=-1) - cols + (cols + 1.0) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = (rows * rx).sum(axis=-1) / n
        my = (cols * ry).sum(axis=-1) / n
        dx, dy = rx - mx[..., None], ry - my[..., None]
        cov = np.einsum("...ij,...i,...j->...", tables, dx, dy)
        vx, vy = (rows * dx ** 2).sum(axis=-1), (cols * dy ** 2).sum(axis=-1)
        rho = cov / np.sqrt(vx * vy)
    return np.where((vx > 0) & (vy > 0), rho, np.nan)


def _kendall_tables(tables: np.ndarray) -> np.ndarray:
    """Kendall's tau-b (as scipy.stats.kendalltau's default) of contingency tables ``(..., Lx, Ly)``."""
    t = np.asarray(tables, dtype=np.float64)
    # above[i, j] = sum of t[k, l] with k > i and l > j; below[i, j] = with k > i and l < j
    suffix = np.flip(np.cumsum(np.cumsum(np.flip(t, (-2, -1)), axis=-2), axis=-1), (-2, -1))  # k >= i, l >= j
    above = np.zeros_like(t)
    above[..., :-1, :-1] = suffix[..., 1:, 1:]
    down_left = np.flip(np.cumsum(np.cumsum(np.flip(t, -2), axis=-2), axis=-1), -2)  # k >= i, l <= j
    below = np.zeros_like(t)
    below[..., :-1, 1:] = down_left[..., 1:, :-1]
    concordant = (t * above).sum(axis=(-2, -1))
    discordant = (t * below).sum(axis=(-2, -1))
    n = t.sum(axis=(-2, -1))
    rows, cols = t.sum(axis=-1), t.sum(axis=-2)
    pairs = n * (n - 1) / 2.0
    tied_x = (rows * (rows - 1) / 2.0).sum(axis=-1)
    tied_y = (cols * (cols - 1) / 2.0).sum(axis=-1)
    denominator = (pairs - tied_x) * (pairs - tied_y)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = (concordant - discordant) / np.sqrt(denominator)
    return np.where(denominator > 0, tau, np.nan)


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def spearman(x, y) -> float | None:
    """Spearman's rank correlation with midranks for ties; None when either side is constant (undefined)."""
    return _finite(_spearman_tables(_table(x, y)[1]))


def kendall_tau_b(x, y) -> float | None:
    """Kendall's tau-b, which corrects for ties on either side; None when either side is constant."""
    return _finite(_kendall_tables(_table(x, y)[1]))


def _coincidences(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pairable unit (a column with at least two values), its contribution to the coincidence matrix
    ``(U, V, V)``, and the values ``(V,)``; ``data`` is (raters, units) with nan where a rater gave no value."""
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError("reliability data must be (raters, units)")
    values = np.unique(data[np.isfinite(data)])
    counts = np.stack([(data == v).sum(axis=0) for v in values], axis=-1).astype(np.float64) if len(values) else \
        np.zeros((data.shape[1], 0))
    m = counts.sum(axis=-1)
    keep = m >= 2
    counts, m = counts[keep], m[keep]
    contributions = (counts[:, :, None] * counts[:, None, :]
                     - np.eye(len(values))[None] * counts[:, :, None]) / (m - 1.0)[:, None, None]
    return contributions, values


def _alpha_from(coincidence: np.ndarray, values: np.ndarray, level: str) -> np.ndarray:
    """Krippendorff's alpha of coincidence matrices ``(..., V, V)``; nan where there is no variation."""
    o = np.asarray(coincidence, dtype=np.float64)
    nc = o.sum(axis=-1)
    n = nc.sum(axis=-1)
    if level == "nominal":
        delta = np.broadcast_to(1.0 - np.eye(len(values)), o.shape)
    elif level == "interval":
        delta = np.broadcast_to((values[:, None] - values[None, :]) ** 2, o.shape)
    elif level == "ordinal":
        cum = np.cumsum(nc, axis=-1)  # delta[c, k] = (sum of n_g for g from c to k - (n_c + n_k) / 2) ** 2
        delta = (cum[..., None, :] - cum[..., :, None] + (nc[..., :, None] - nc[..., None, :]) / 2.0) ** 2
    else:
        raise ConfigError(f"Krippendorff's alpha: level {level!r}: choose one of {', '.join(ALPHA_LEVELS)}")
    observed = (o * delta).sum(axis=(-2, -1))
    expected = np.einsum("...c,...k,...ck->...", nc, nc, delta) / (n - 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = 1.0 - observed / expected
    return np.where(expected > 0, alpha, np.nan)


def krippendorff_alpha(data, level: str = "ordinal") -> float | None:
    """Krippendorff's alpha of reliability data ``(raters, units)`` (nan: no value), at the ``level`` of
    measurement (ordinal, interval or nominal); None when undefined (fewer than two pairable values, or none
    differing)."""
    contributions, values = _coincidences(data)
    if len(contributions) == 0 or len(values) == 0:
        return None
    return _finite(_alpha_from(contributions.sum(axis=0), values, level))


# --- bootstrap over items -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings(BootstrapSettings):
    min_units: int = MIN_UNITS  # no interval below this many items

    def describe(self) -> dict:
        return {**super().describe(), "min_units": self.min_units}


def _resampled_counts(n: int, resamples: int, rng: np.random.Generator, block: int):
    """Blocks of how often each of ``n`` items is drawn in each replicate ``(size, n)``."""
    for start in range(0, resamples, block):
        size = min(block, resamples - start)
        index = rng.integers(0, n, size=(size, n))
        flat = (np.arange(size)[:, None] * n + index).ravel()
        yield np.bincount(flat, minlength=size * n).reshape(size, n).astype(np.float64)


def _interval(contributions: np.ndarray, statistic, settings: Settings) -> dict | None:
    """Bootstrap interval of ``statistic(sum of the items' contributions)``, resampling the items: each item adds
    its slice of ``contributions`` ``(n, ...)`` once per draw. None below ``min_units`` items."""
    n = len(contributions)
    estimate = _finite(statistic(contributions.sum(axis=0)))
    if n < max(2, settings.min_units) or estimate is None:
        return None
    flat = contributions.reshape(n, -1)
    rng = np.random.default_rng(settings.seed)
    block = max(1, _BLOCK // max(n, flat.shape[1]))
    out = np.concatenate([statistic((counts @ flat).reshape(len(counts), *contributions.shape[1:]))
                          for counts in _resampled_counts(n, settings.resamples, rng, block)])
    jackknife = None
    if settings.method == "bca":
        jackknife = statistic(contributions.sum(axis=0)[None] - contributions)
        if not np.all(np.isfinite(jackknife)):
            jackknife = None
    if not np.any(np.isfinite(out)):
        return None
    low, high, notes = interval_from(out, estimate, settings.level, settings.method, jackknife)
    undefined = int(np.sum(~np.isfinite(out)))
    if undefined:
        notes = notes + [f"{undefined} of {settings.resamples} resamples had no value (a constant side) and were "
                         "left out"]
    result = {"low": low, "high": high, "level": settings.level, "method": settings.method,
              "resamples": settings.resamples, "seed": settings.seed, "units": n}
    return {**result, "notes": notes} if notes else result


def _statistic(value: float | None, interval: dict | None) -> dict:
    return {"value": value, "interval": interval}


def correlations(x, y, settings: Settings = Settings()) -> dict:
    """Spearman and Kendall tau-b of paired grades with their bootstrap intervals (resampling the pairs)."""
    check_settings(settings.level, settings.resamples, settings.method)
    onehot, table, _, _ = _table(x, y)
    shape = table.shape
    per_item = onehot.reshape(len(onehot), *shape)
    return {"spearman": _statistic(_finite(_spearman_tables(table)), _interval(per_item, _spearman_tables, settings)),
            "kendall_tau_b": _statistic(_finite(_kendall_tables(table)),
                                        _interval(per_item, _kendall_tables, settings))}


def alpha_with_interval(data, level: str = "ordinal", settings: Settings = Settings()) -> dict:
    """Krippendorff's alpha of ``(raters, units)`` data with a bootstrap interval resampling the pairable units."""
    check_settings(settings.level, settings.resamples, settings.method)
    contributions, values = _coincidences(data)
    if len(contributions) == 0 or len(values) == 0:
        return {"value": None, "interval": None, "level": level, "items": 0}
    statistic = lambda o: _alpha_from(o, values, level)  # noqa: E731
    return {"value": _finite(statistic(contributions.sum(axis=0))), "interval": _interval(contributions, statistic,
                                                                                          settings),
            "level": level, "items": len(contributions)}


def _mean_interval(values: list[float], settings: Settings) -> dict:
    units = Units.of(values)
    interval = confidence_interval(units, settings.level, settings.resamples, settings.method, settings.seed,
                                   settings.min_units)
    return _statistic(units.statistic(), interval.to_dict() if interval else None)


# --- ratings and the judge's grades ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rating:
    case: str
    method: str
    metric: str
    rater: str
    grade: int
    line: int


@dataclass
class Ratings:
    ratings: list[Rating]
    skipped: int = 0  # rows with a blank grade

    def metrics(self) -> list[str]:
        return sorted({r.metric for r in self.ratings})


def read_ratings(path: Path | str) -> Ratings:
    """The ratings of a CSV in the format above; a malformed row is a one-line error naming the line."""
    path = Path(path)
    try:
        handle = open(path, newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such ratings file") from None
    ratings: list[Rating] = []
    seen: dict[tuple, int] = {}
    skipped = 0
    with handle:
        reader = csv.DictReader(handle)
        header = {(name or "").strip().lower(): name for name in reader.fieldnames or []}
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise ConfigError(f"{path}: missing column(s) {', '.join(missing)} (expected a header row with "
                              f"{', '.join(COLUMNS)})")
        for line, row in enumerate(reader, start=2):
            fields = {c: (row.get(header[c]) or "").strip() for c in COLUMNS}
            if not fields["grade"]:
                skipped += 1
                continue
            for column in ("case", "method", "metric", "rater"):
                if not fields[column]:
                    raise ConfigError(f"{path}: line {line}: empty {column}")
            try:
                number = float(fields["grade"])
            except ValueError:
                number = math.nan
            if not (number.is_integer() and int(number) in GRADES):
                raise ConfigError(f"{path}: line {line}: grade {fields['grade']!r}: expected an integer from 0 to 4")
            rating = Rating(fields["case"], fields["method"], fields["metric"].lower(), fields["rater"], int(number),
                            line)
            key = (rating.case, rating.method, rating.metric, rating.rater)
            if key in seen:
                raise ConfigError(f"{path}: line {line}: rater {rating.rater!r} already graded {rating.metric} of "
                                  f"{rating.method} on case {rating.case!r} (line {seen[key]})")
            seen[key] = line
            ratings.append(rating)
    if not ratings:
        raise ConfigError(f"{path}: no ratings (every row's grade is blank, or the file has no rows)")
    return Ratings(ratings, skipped)


def judge_grades(results: Path | str) -> dict[tuple[str, str, str], list[float]]:
    """(case, method, metric) -> the judge's grades (0-4, one per repeat) of every ``ok`` judge row."""
    from tvbench.io import read_jsonl
    from tvbench.scoring.files import SCORES_FILE
    from tvbench.scoring.rows import OK

    path = Path(results) / SCORES_FILE if Path(results).is_dir() else Path(results)
    if not path.is_file():
        raise ResultsError(f"{path}: no scores; run `tvbench score RESULTS --metrics pf,cp --judge-base-url ...` "
                           "first")
    grades: dict[tuple[str, str, str], list[float]] = {}
    for row in read_jsonl(path):
        judge = row.get("judge")
        if not isinstance(judge, dict) or row.get("status") != OK:
            continue
        scores = judge.get("scores")
        if isinstance(scores, list) and scores and all(isinstance(s, (int, float)) for s in scores):
            values = [float(s) for s in scores]
        elif isinstance(row.get("value"), (int, float)):
            values = [float(row["value"]) * 4.0]
        else:
            continue
        grades[(str(row.get("case")), str(row.get("method")), str(row.get("metric")).lower())] = values
    return grades


def judged_metrics(results: Path | str) -> list[str]:
    """The judge metrics with any row in RESULTS/scores.jsonl (ok or not)."""
    from tvbench.io import read_jsonl
    from tvbench.scoring.files import SCORES_FILE

    path = Path(results) / SCORES_FILE if Path(results).is_dir() else Path(results)
    return sorted({str(r.get("metric")).lower() for r in read_jsonl(path) if isinstance(r.get("judge"), dict)})


@dataclass
class MetricAgreement:
    metric: str
    items: int  # rated and graded by the judge
    ratings: int  # ratings of those items
    raters: list[str]
    not_judged: int  # rated items the judge has no ok grade for (not in the statistics)
    spearman: dict = field(default_factory=dict)
    kendall_tau_b: dict = field(default_factory=dict)
    exact: dict = field(default_factory=dict)
    within_one: dict = field(default_factory=dict)
    alpha: dict | None = None  # among the raters; None with fewer than two

    def to_dict(self) -> dict:
        return {"metric": self.metric, "items": self.items, "ratings": self.ratings, "raters": self.raters,
                "not_judged": self.not_judged, "spearman": self.spearman, "kendall_tau_b": self.kendall_tau_b,
                "exact": self.exact, "within_one": self.within_one, "krippendorff_alpha": self.alpha}


def agreement(ratings: Ratings, grades: dict[tuple[str, str, str], list[float]], alpha_level: str = "ordinal",
              settings: Settings = Settings()) -> list[MetricAgreement]:
    """Per metric of the ratings, how the judge agrees with the people (see the module docstring)."""
    if alpha_level not in ALPHA_LEVELS:
        raise ConfigError(f"--alpha-level {alpha_level!r}: choose one of {', '.join(ALPHA_LEVELS)}")
    check_settings(settings.level, settings.resamples, settings.method)
    out = []
    for metric in ratings.metrics():
        rated: dict[tuple[str, str], dict[str, int]] = {}
        for r in ratings.ratings:
            if r.metric == metric:
                rated.setdefault((r.case, r.method), {})[r.rater] = r.grade
        items = [(key, by_rater) for key, by_rater in rated.items() if (key[0], key[1], metric) in grades]
        judge = [np.asarray(grades[(case, method, metric)]) for (case, method), _ in items]
        people = [np.asarray(list(by_rater.values()), dtype=np.float64) for _, by_rater in items]
        raters = sorted({rater for by_rater in rated.values() for rater in by_rater})
        result = MetricAgreement(metric, len(items), int(sum(len(p) for p in people)), raters,
                                 len(rated) - len(items))
        if items:
            ranks = correlations([j.mean() for j in judge], [p.mean() for p in people], settings)
            result.spearman, result.kendall_tau_b = ranks["spearman"], ranks["kendall_tau_b"]
            diffs = [np.abs(j[:, None] - p[None, :]) for j, p in zip(judge, people)]
            result.exact = _mean_interval([float(np.mean(d == 0)) for d in diffs], settings)
            result.within_one = _mean_interval([float(np.mean(d <= 1)) for d in diffs], settings)
        else:
            empty = _statistic(None, None)
            result.spearman = result.kendall_tau_b = result.exact = result.within_one = empty
        if len(raters) >= 2:
            units = list(rated.values())
            data = np.full((len(raters), len(units)), np.nan)
            for u, by_rater in enumerate(units):
                for rater, grade in by_rater.items():
                    data[raters.index(rater), u] = grade
            result.alpha = alpha_with_interval(data, alpha_level, settings)
        out.append(result)
    return out


def agreement_report(ratings_path: Path | str, results: Path | str, alpha_level: str = "ordinal",
                     settings: Settings = Settings()) -> dict:
    """Everything ``tvbench judge agreement`` prints, as one JSON-ready dict."""
    ratings = read_ratings(ratings_path)
    grades = judge_grades(results)
    judged = judged_metrics(results)
    unknown = [m for m in ratings.metrics() if m not in judged]
    if unknown:
        raise ConfigError(f"{ratings_path}: metric(s) {', '.join(unknown)} have no judge rows in {results} "
                          f"(it has {', '.join(judged) or 'none'})")
    metrics = agreement(ratings, grades, alpha_level, settings)
    return {"ratings": str(ratings_path), "results": str(results), "skipped_blank_grades": ratings.skipped,
            "settings": {**settings.describe(), "alpha_level": alpha_level},
            "metrics": [m.to_dict() for m in metrics]}


def _number(stat: dict | None, digits: int = 3) -> str:
    if not stat or stat.get("value") is None:
        return "–"
    text = f"{stat['value']:.{digits}f}"
    interval = stat.get("interval")
    return f"{text} [{interval['low']:.{digits}f}, {interval['high']:.{digits}f}]" if interval else text


def render_agreement(report: dict, fmt: str = "markdown") -> str:
    if fmt == "json":
        return json.dumps(report, indent=2) + "\n"
    settings = report["settings"]
    level = settings["alpha_level"]
    header = ["metric", "items", "ratings", "raters", "Spearman ρ", "Kendall τ-b", "exact", "within one",
              f"α among raters ({level})"]
    rows = []
    for m in report["metrics"]:
        alpha = m["krippendorff_alpha"]
        alpha_text = (_number(alpha) + f" ({alpha['items']} items)") if alpha else "– (one rater)"
        rows.append([m["metric"], str(m["items"]), str(m["ratings"]), str(len(m["raters"])), _number(m["spearman"]),
                     _number(m["kendall_tau_b"]), _number(m["exact"]), _number(m["within_one"]), alpha_text])
    if fmt == "csv":
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["metric", "items", "ratings", "raters", "statistic", "value", "low", "high"])
        for m in report["metrics"]:
            for name in ("spearman", "kendall_tau_b", "exact", "within_one", "krippendorff_alpha"):
                stat = m[name] or {}
                interval = stat.get("interval") or {}
                label = f"krippendorff_alpha_{level}" if name == "krippendorff_alpha" else name
                writer.writerow([m["metric"], m["items"], m["ratings"], len(m["raters"]), label,
                                 _plain(stat.get("value")), _plain(interval.get("low")), _plain(interval.get("high"))])
        return buffer.getvalue()
    from tabulate import tabulate

    text = tabulate(rows, headers=header, tablefmt="pipe", disable_numparse=True)
    not_judged = sum(m["not_judged"] for m in report["metrics"])
    notes = [f"Judge vs people over the (case, method) items both graded: rank correlations of the judge's grade and "
             f"the people's mean grade; exact / within-one: share of (judge, rating) pairs equal / at most one apart. "
             f"α: Krippendorff's alpha ({level}) among the people, the judge left out, over items with two ratings "
             f"or more. [{settings['level']:.0%} bootstrap intervals over items: {settings['method']}, "
             f"{settings['resamples']} resamples, seed {settings['seed']}; none below {settings['min_units']} items.]"]
    if not_judged:
        notes.append(f"{not_judged} rated item(s) have no ok judge grade in {report['results']} and are left out.")
    if report.get("skipped_blank_grades"):
        notes.append(f"{report['skipped_blank_grades']} row(s) with a blank grade skipped.")
    return text + "\n\n" + "\n".join(notes) + "\n"


def _plain(value) -> str:
    return "" if value is None else f"{value:.6g}"
