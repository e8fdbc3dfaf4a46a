"""Plots of a results folder (matplotlib, the ``plots`` extra), written as PNG and SVG under ``RESULTS/plots/``:

- ``metric-<name>``: every method's headline value of one metric with its confidence interval;
- ``tradeoff``: MD_s against PF, one point per method (the paper's central trade-off: geometry against
  semantics); where PF was not scored, against DS_global^tgt, and the title says so;
- ``magnitude``: achieved against requested displacement in the magnitude groups, one line per group and method.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tvbench.analysis.frames import load_scores, read_summary, results_folder, summary_frame
from tvbench.analysis.uncertainty import reads_ground_truth
from tvbench.errors import UnavailableError
from tvbench.metrics import column_order
from tvbench.scoring.files import REPORT_FOLDERS, SCORES_FILE
from tvbench.scoring.rows import OK

PLOTS_FOLDER = REPORT_FOLDERS[0]

TRADEOFF_X = "md_s"
TRADEOFF_Y = ("pf", "ds_global_tgt")  # PF, else the semantic stand-in that needs no judge
FORMATS = ("png", "svg")


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise UnavailableError("--plots needs matplotlib: pip install 'tvbench[plots]'") from None
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _save(figure, folder: Path, stem: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in FORMATS:
        path = folder / f"{stem}.{fmt}"
        figure.savefig(path, dpi=100, bbox_inches="tight", metadata={"Software": None} if fmt == "png" else
                       {"Date": None, "Creator": None})
        written.append(path)
    return written


def _errors(frame: pd.DataFrame) -> list[list[float]] | None:
    """Asymmetric error bars (below, above) from the interval columns; zero where there is no interval."""
    if frame["ci_low"].isna().all():
        return None
    below = (frame["value"] - frame["ci_low"]).fillna(0.0).clip(lower=0.0)
    above = (frame["ci_high"] - frame["value"]).fillna(0.0).clip(lower=0.0)
    return [below.tolist(), above.tolist()]


def plot_metric(plt, frame: pd.DataFrame, folder: Path) -> list[Path]:
    """One metric: methods top to bottom, value with its interval; references (GT) in grey."""
    first = frame.iloc[0]
    shown = frame.dropna(subset=["value"])
    figure, axes = plt.subplots(figsize=(6.0, 0.45 * max(2, len(frame)) + 1.0))
    y = list(range(len(shown)))[::-1]
    colours = ["#888888" if reads_ground_truth(i) else "#1f5fa8" for i in shown["inputs"]]
    partial = ~shown["complete"].astype(bool)
    axes.errorbar(shown["value"], y, xerr=_errors(shown), fmt="none", ecolor="#444444", capsize=3, lw=1)
    axes.scatter(shown["value"], y, c=colours, zorder=3)
    if partial.any():  # a mean over fewer cases (or groups) than the others: hollow, and named so
        axes.scatter(shown["value"][partial], [v for v, p in zip(y, partial) if p], c="white", s=14, zorder=4)
    axes.set_yticks(y, [f"{m} (partial, not ranked)" if p else m for m, p in zip(shown["method"], partial)])
    arrow = "higher is better" if first["higher_is_better"] else "lower is better"
    level = shown["ci_level"].dropna()
    interval = f", {level.iloc[0]:.0%} CI" if len(level) else ""
    axes.set_title(f"{first['label']} ({arrow}{interval})", fontsize=10)
    missing = sorted(set(frame["method"]) - set(shown["method"]))
    if missing:
        axes.set_xlabel("no value: " + ", ".join(f"{m} ({s})" for m, s in
                                                   zip(frame["method"], frame["status"]) if m in missing), fontsize=8)
    axes.grid(axis="x", alpha=0.3)
    paths = _save(figure, folder, f"metric-{first['metric']}")
    plt.close(figure)
    return paths


def plot_tradeoff(plt, frame: pd.DataFrame, folder: Path) -> list[Path]:
    """MD_s (x, lower is better) against PF (y; else DS_global^tgt), one point per method with both intervals."""
    y_metric = next((m for m in TRADEOFF_Y if (frame["metric"] == m).any() and frame.loc[frame["metric"] == m,
                                                                                         "value"].notna().any()), None)
    if y_metric is None or not (frame["metric"] == TRADEOFF_X).any():
        return []
    x = frame[frame["metric"] == TRADEOFF_X].set_index("method")
    y = frame[frame["metric"] == y_metric].set_index("method")
    both = x.join(y, lsuffix="_x", rsuffix="_y", how="inner").dropna(subset=["value_x", "value_y"])
    if both.empty:
        return []
    figure, axes = plt.subplots(figsize=(5.5, 4.2))
    for method, row in both.iterrows():
        grey = reads_ground_truth(row["inputs_x"])
        xerr = [[max(0.0, row["value_x"] - row["ci_low_x"])], [max(0.0, row["ci_high_x"] - row["value_x"])]] \
            if pd.notna(row["ci_low_x"]) else None
        yerr = [[max(0.0, row["value_y"] - row["ci_low_y"])], [max(0.0, row["ci_high_y"] - row["value_y"])]] \
            if pd.notna(row["ci_low_y"]) else None
        axes.errorbar(row["value_x"], row["value_y"], xerr=xerr, yerr=yerr, fmt="o", capsize=3,
                      color="#888888" if grey else None, label=method)
    axes.set_xlabel(f"{both['label_x'].iloc[0]} (lower is better: geometry)")
    axes.set_ylabel(f"{both['label_y'].iloc[0]} (higher is better: semantics)")
    note = "" if y_metric == "pf" else " (PF not scored: DS_global^tgt instead)"
    axes.set_title(f"Geometry against semantics{note}", fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="best")
    paths = _save(figure, folder, "tradeoff")
    plt.close(figure)
    return paths


def plot_magnitude(plt, scores: pd.DataFrame, folder: Path) -> list[Path]:
    """Achieved against requested displacement in each magnitude group, per method (one panel per method)."""
    rows = scores[(scores["metric"] == "magnitude_rho") & (scores["status"] == OK)]
    if rows.empty:
        return []
    methods = list(dict.fromkeys(rows["method"]))
    figure, panels = plt.subplots(1, len(methods), figsize=(3.2 * len(methods), 3.3), sharex=True, sharey=True,
                                  squeeze=False)
    top = float(max(rows["requested"].max(), rows["value"].max())) * 1.08
    for axes, method in zip(panels[0], methods):
        for group, members in rows[rows["method"] == method].groupby("group"):
            members = members.sort_values("requested")
            axes.plot(members["requested"], members["value"], marker="o", label=str(group))
        axes.plot([0, top], [0, top], color="#999999", lw=0.8, ls="--")
        axes.set_title(method, fontsize=10)
        axes.set_xlabel("requested (normalised)")
        axes.grid(alpha=0.3)
    panels[0][0].set_ylabel("achieved (normalised)")
    panels[0][-1].legend(fontsize=7, loc="upper left")
    figure.suptitle("Magnitude control: achieved vs requested displacement", fontsize=10)
    paths = _save(figure, folder, "magnitude")
    plt.close(figure)
    return paths


def write_plots(results: Path | str, summary: dict | None = None) -> list[Path]:
    """Every plot for a results folder into ``RESULTS/plots/``; returns the files written."""
    plt = _pyplot()
    folder = results_folder(results)
    summary = summary if summary is not None else read_summary(folder)
    frame = summary_frame(summary)
    frame = frame[frame["applicable"].fillna(0) > 0]
    out = folder / PLOTS_FOLDER
    written: list[Path] = []
    for metric in column_order(dict.fromkeys(frame["metric"])):
        written += plot_metric(plt, frame[frame["metric"] == metric], out)
    written += plot_tradeoff(plt, frame, out)
    if (folder / SCORES_FILE).is_file():
        written += plot_magnitude(plt, load_scores(folder), out)
    return written
