"""Render a :class:`Leaderboard` as Markdown, LaTeX, CSV, JSON or HTML."""

from __future__ import annotations

import json
import re
from typing import Callable

from tabulate import tabulate

from tvbench.analysis.bootstrap import MIN_UNITS
from tvbench.errors import ConfigError
from tvbench.report.escape import html_text, latex_text, markdown_text
from tvbench.report.leaderboard import Cell, Leaderboard

DECIMALS = 4


LOW_COVERAGE = "low coverage"


TIE = "≈"
UNDEFINED = "undefined"


def symmetric(cell: Cell) -> bool:
    """Whether ``value ± half-width`` states the interval: its two sides agree within a tenth of the half-width,
    and neither end of ``value ± half-width`` leaves the metric's range."""
    low, high = cell.ci
    half = (high - low) / 2
    if abs((high - cell.mean) - (cell.mean - low)) > 0.1 * half:
        return False
    bottom, top = cell.range
    return (bottom is None or cell.mean - half >= bottom) and (top is None or cell.mean + half <= top)


def _number(cell: Cell, style: str = "pm", pm: str = "±") -> str:
    """The value with its interval in ``style`` (``pm`` falls back to bounds where ± would misstate it); below
    the fewest units an interval needs, the value with its ``n``; without an interval, a judge metric's std over
    repeats."""
    if cell.mean is None:
        return UNDEFINED if cell.undefined else ("n/a" if cell.applicable == 0 else "–")
    value = f"{cell.mean:.{DECIMALS}f}"
    if cell.ci is not None and style == "pm" and symmetric(cell):
        return f"{value} {pm} {(cell.ci[1] - cell.ci[0]) / 2:.{DECIMALS}f}"
    if cell.ci is not None and style in ("pm", "bounds"):
        return f"{value} [{cell.ci[0]:.{DECIMALS}f}, {cell.ci[1]:.{DECIMALS}f}]"
    if cell.ci is None and cell.std is not None and style != "none":
        return f"{value} {pm} {cell.std:.{DECIMALS}f}"
    if cell.ci is None and cell.units is not None and cell.units < MIN_UNITS and style != "none":
        return f"{value} (n={cell.units})"
    return value


def _coverage(cell: Cell) -> str:
    """(n/N) where partial, and always for judge metrics (PF, CP), flagged when below the judge's threshold."""
    if cell.partial_groups and cell.n >= cell.applicable:
        return f" ({cell.groups[0]}/{cell.groups[1]} groups)"
    if not (cell.partial or (cell.judged and cell.applicable)):
        return ""
    return f" ({cell.n}/{cell.applicable}{', ' + LOW_COVERAGE if cell.flagged else ''})"


def _flag_note(board: Leaderboard) -> str | None:
    flagged = [cell for row in board.rows for cell in row.cells.values() if cell.flagged]
    if not flagged:
        return None
    threshold = flagged[0].threshold
    below = f"below {threshold:.0%}" if isinstance(threshold, (int, float)) else "below the threshold"
    return (f"{LOW_COVERAGE}: the judge graded {below} of the applicable cases (the rest are unparseable, refused, "
            "error or missing); the mean covers only the graded ones.")


def _styled(cell: Cell, best: str, second: str, text: str, tie: str = TIE) -> str:
    """The cell's number wrapped by its rank's template (``"**{}**"`` ...), its tie mark, then its coverage."""
    if cell.rank in (1, 2):
        text = (best if cell.rank == 1 else second).format(text)
    return text + (tie if cell.tied else "") + _coverage(cell)


REFERENCE_MARKS = {"reproduced": "✓", "not reproduced": "✗", "no interval": "?", "no value": "?"}
LATEX_MARKS = {"✓": r"$\checkmark$", "✗": r"$\times$", "?": "?"}  # \checkmark: amssymb


def _published(cell: Cell) -> tuple[str, str]:
    """(`` · paper 0.8700 (+0.0123) ``, ``✓``): the published value, tvbench minus it, and the verdict's mark."""
    published = cell.published
    if not published:
        return "", ""
    difference = published.get("difference")
    delta = f" ({difference:+.{DECIMALS}f})" if difference is not None else ""
    return f" · paper {published['published_printed']}{delta} ", REFERENCE_MARKS[published["verdict"]]


def _reference_notes(board: Leaderboard) -> list[str]:
    """What the published values and their marks mean, and what they cannot mean."""
    reference = board.reference
    if reference is None:
        return []
    notes = [f"paper V (Δ): the value published in {reference.citation}, and Δ = tvbench − published; "
             "✓ the published value lies inside tvbench's interval (reproduced: not distinguishable at this level), "
             "✗ outside it (not reproduced), ? tvbench has no interval (fewer than the units one needs) or no value. "
             "The published number has no interval of its own, so ✓ says only that this run cannot tell them apart."]
    published_on = str(reference.benchmark).lower()
    ours = str(board.benchmark.get("name", "")).lower()
    if "tv-edit-bench" in published_on and "tv-edit-bench" not in ours:
        notes.append(f"The table was measured on {reference.benchmark}, which is not released; these results are on "
                     f"{board.benchmark.get('name')}, so the comparison says nothing about reproduction (on "
                     "DragBench, Table F.5 is the meaningful reference).")
    elif "dragbench" in published_on and "dragbench" not in ours:
        notes.append(f"The table was measured on {reference.benchmark}; these results are on "
                     f"{board.benchmark.get('name')}: the comparison is only meaningful on the same benchmark.")
    if board.smoke:
        notes.append("Smoke scoring: random networks, so no published value can be reproduced.")
    return notes + [f"Not compared: {line}." for line in board.uncompared]


def _uncertainty_notes(board: Leaderboard) -> list[str]:
    """What the ± (or the brackets) and the tie mark mean, when the table shows them, and who judged."""
    notes = []
    settings = board.uncertainty or {}
    with_ci = any(cell.ci for row in board.rows for cell in row.cells.values())
    if with_ci and board.ci_style != "none":
        shown = ("± half the width of (or [low, high] where the interval is asymmetric or ± would leave the metric's "
                 "range)" if board.ci_style == "pm" else "[low, high]:")
        notes.append(f"{shown} the {settings.get('level', 0.95):.0%} bootstrap confidence interval over cases "
                     f"(groups for the sub-task metrics; {settings.get('resamples')} resamples, "
                     f"{settings.get('method')}, seed {settings.get('seed')}).")
    few = any(cell.ci is None and cell.mean is not None and cell.units is not None and cell.units < MIN_UNITS
              for row in board.rows for cell in row.cells.values())
    if few and board.ci_style != "none":
        notes.append(f"(n=K): K units (cases, or groups for the sub-task metrics), fewer than the {MIN_UNITS} an "
                     "interval needs to hold what it claims (benchmarks/coverage_bench.py), so none is shown.")
    if any(cell.tied for row in board.rows for cell in row.cells.values()):
        notes.append(f"{TIE}: tied: best and second are not significantly different (Wilcoxon signed-rank on paired "
                     f"cases, Holm-corrected across metrics, alpha {settings.get('alpha', 0.05)}), or several "
                     "methods hold the same value; every tied method carries the mark.")
    if board.judge_identity:
        notes.append(f"Judged by: {board.judge_identity}.")
    if board.without_edits:
        notes.append("Not ranked (no edits; the run failed, see its manifest.json): "
                     f"{', '.join(board.without_edits)}.")
    if any(cell.undefined for row in board.rows for cell in row.cells.values()):
        notes.append(f"{UNDEFINED}: the statistic does not exist for these edits (a rank correlation of "
                     "displacements that are all equal: nothing moved).")
    return notes


def _provenance_line(board: Leaderboard) -> str:
    bench = board.benchmark
    parts = [f"benchmark {bench.get('name')} ({str(bench.get('hash', ''))[7:19]}, {bench.get('n_cases')} cases)"]
    models = board.scorer.get("models", {})
    if "dino" in models:
        dino = models["dino"]
        parts.append(f"DINOv3 {dino.get('id')} @{dino.get('resolution')}px")
    if "lpips" in models:
        parts.append(f"LPIPS-{models['lpips'].get('net')}")
    if "judge" in models:
        judge = models["judge"]
        prompts = ", ".join(p.get("id", "?") for p in judge.get("prompts", {}).values())
        repeats = judge.get("repeats", 1)
        parts.append(f"judge {judge.get('model')} ({prompts}{f', {repeats} repeats' if repeats > 1 else ''})")
    return " · ".join(parts)


LEGEND = ("Best in bold, second underlined, among the methods scored on every applicable case (and, for a sub-task "
          "metric, defined in every group); (n/N) marks partial coverage and (k/K groups) a statistic defined in "
          "only some groups, neither ranked (its mean covers other cases or groups); {gt} read the ground truth and "
          "are not ranked.")

SMOKE_WARNING = ("smoke scoring: randomly initialised networks (offline pipeline check); these numbers are not "
                 "comparable to the paper's")


def to_markdown(board: Leaderboard) -> str:
    def fmt(cell: Cell) -> str:
        return _styled(cell, "**{}**", "<u>{}</u>", _number(cell, board.ci_style)) + "".join(_published(cell))

    headers = ["Method", "Input"] + [f"{markdown_text(c.label)} {c.arrow}" for c in board.columns]
    body = [[markdown_text(row.method) if row.ranked else f"*{markdown_text(row.method)}*", markdown_text(row.inputs)]
            + [fmt(row.cells[c.name]) for c in board.columns] for row in board.rows]
    lines = ["<!-- generated by `tvbench report`; do not edit by hand -->", "", markdown_text(_provenance_line(board)),
             ""]
    if board.smoke:
        lines += [f"> **Note:** {SMOKE_WARNING}.", ""]
    lines.append(tabulate(body, headers=headers, tablefmt="pipe", disable_numparse=True))
    lines += ["", LEGEND.format(gt="*italic* rows")]
    for note in _uncertainty_notes(board) + [markdown_text(note) for note in _reference_notes(board)]:
        lines += ["", note]
    note = _flag_note(board)
    if note:
        lines += ["", f"> **Note:** {note}"]
    return "\n".join(lines) + "\n"


def to_latex(board: Leaderboard) -> str:
    def fmt(cell: Cell) -> str:
        text, mark = _published(cell)
        return _styled(cell, r"\textbf{{{}}}", r"\underline{{{}}}",
                       _number(cell, board.ci_style, r"$\pm$").replace("–", "--"), r"$^{\approx}$") \
            + latex_text(text.replace(" · ", " / ")) + LATEX_MARKS.get(mark, "")

    arrows = {True: r"$\uparrow$", False: r"$\downarrow$"}
    header = " & ".join(["Method", "Input"] + [f"{c.latex} {arrows[c.higher_is_better]}" for c in board.columns])
    lines = [r"% generated by `tvbench report`; needs \usepackage{booktabs}",
             rf"% {latex_text(_provenance_line(board))}", f"% {latex_text(LEGEND.format(gt='rows below a rule'))}"]
    if board.smoke:
        lines.append(f"% WARNING: {SMOKE_WARNING}")
    if _flag_note(board):
        lines.append(f"% NOTE: {latex_text(_flag_note(board) or '')}")
    lines += [f"% {latex_text(note)}" for note in _uncertainty_notes(board) + _reference_notes(board)]
    lines += [r"\begin{tabular}{ll" + "c" * len(board.columns) + "}", r"\toprule", header + r" \\", r"\midrule"]
    for row in board.rows:
        if not row.ranked:
            lines.append(r"\midrule")
        cells = [latex_text(row.method), latex_text(row.inputs)] + [fmt(row.cells[c.name]) for c in board.columns]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def leaderboard_frame(board: Leaderboard):
    """The leaderboard as a DataFrame: one row per method; per metric its value, interval, counts, rank, tie."""
    import pandas as pd

    judged = {c.name for c in board.columns if any(row.cells[c.name].judged for row in board.rows)}
    records = []
    for row in board.rows:
        record: dict = {"method": row.method, "inputs": row.inputs, "ranked": int(row.ranked)}
        for c in board.columns:
            cell = row.cells[c.name]
            low, high = cell.ci if cell.ci else (None, None)
            record.update({c.name: cell.mean, f"{c.name}_ci_low": low, f"{c.name}_ci_high": high,
                           f"{c.name}_n": cell.n, f"{c.name}_applicable": cell.applicable,
                           f"{c.name}_rank": cell.rank or "", f"{c.name}_tied": int(cell.tied)})
            if c.name in judged:
                record.update({f"{c.name}_std": cell.std, f"{c.name}_flagged": int(cell.flagged)})
            if board.reference is not None:
                published = cell.published or {}
                record.update({f"{c.name}_published": published.get("published"),
                               f"{c.name}_difference": published.get("difference"),
                               f"{c.name}_verdict": published.get("verdict", "")})
        records.append(record)
    return pd.DataFrame.from_records(records)


def to_csv(board: Leaderboard) -> str:
    return leaderboard_frame(board).to_csv(index=False, lineterminator="\n")


def to_json(board: Leaderboard) -> str:
    payload = {
        "benchmark": board.benchmark,
        "scorer": board.scorer,
        "uncertainty": board.uncertainty,
        "columns": [{"name": c.name, "label": c.label, "higher_is_better": c.higher_is_better} for c in board.columns],
        "rows": [{"method": row.method, "inputs": row.inputs, "ranked": row.ranked,
                  "metrics": {name: {"mean": cell.mean, "n": cell.n, "applicable": cell.applicable, "rank": cell.rank,
                                     "ci": list(cell.ci) if cell.ci else None, "tied": cell.tied,
                                     **({"status": UNDEFINED} if cell.undefined else {}),
                                     **({"std": cell.std, "flagged": cell.flagged} if cell.judged else {}),
                                     **({"published": {k: cell.published[k] for k in
                                                       ("published", "published_printed", "difference", "verdict")}}
                                        if cell.published else {})}
                              for name, cell in row.cells.items()}} for row in board.rows],
    }
    if board.reference is not None:
        payload["reference"] = {"id": board.reference.id, "citation": board.reference.citation,
                                "notes": _reference_notes(board)}
    return json.dumps(payload, indent=2) + "\n"


# A metric label's sub- and superscripts, written as in LaTeX without braces: ``DS_global^tgt``, ``PF_drag``. A mark
# must follow a character and is followed by the script's text (up to a space or the next mark).
_SCRIPT = re.compile(r"(?<=\S)([_^])([^\s_^]+)")


def html_label(label: object) -> str:
    """A metric label as HTML with real scripts (``DS<sub>global</sub><sup>tgt</sup>``), every text escaped."""
    text, parts, last = str(label), [], 0
    for match in _SCRIPT.finditer(text):
        tag = "sub" if match.group(1) == "_" else "sup"
        parts += [html_text(text[last:match.start()]), f"<{tag}>{html_text(match.group(2))}</{tag}>"]
        last = match.end()
    return "".join(parts) + html_text(text[last:])


def html_table(board: Leaderboard) -> str:
    """The leaderboard as an HTML ``<table>`` (every text escaped), its numbers in ``data-value`` for sorting."""
    def fmt(cell: Cell) -> str:
        return _styled(cell, "<b>{}</b>", "<u>{}</u>", html_text(_number(cell, board.ci_style)),
                       f'<span class="tie" title="not significantly different">{TIE}</span>') \
            + html_text(_published(cell)[0]) \
            + (f'<span class="published" title="{html_text(cell.published["verdict"])}">{_published(cell)[1]}'
               "</span>" if cell.published else "")

    def value(cell: Cell) -> str:
        return "" if cell.mean is None else f' data-value="{cell.mean!r}"'

    head = "".join(f'<th title="{html_text(c.name)}">{html_label(c.label)} {c.arrow}</th>' for c in board.columns)
    body = "\n".join(
        f"<tr><td>{html_text(row.method) if row.ranked else '<i>' + html_text(row.method) + '</i>'}</td>"
        f"<td>{html_text(row.inputs)}</td>"
        + "".join(f"<td{value(row.cells[c.name])}>{fmt(row.cells[c.name])}</td>" for c in board.columns)
        + "</tr>" for row in board.rows)
    return (f'<table class="leaderboard">\n<thead><tr><th>Method</th><th>Input</th>{head}</tr></thead>\n'
            f"<tbody>\n{body}\n</tbody>\n</table>")


def html_notes(board: Leaderboard) -> str:
    """Provenance, warnings and what the marks mean, as HTML paragraphs."""
    notes = f"<p>{html_text(_provenance_line(board))}</p>"
    if board.smoke:
        notes += f"<p><b>Note:</b> {html_text(SMOKE_WARNING)}.</p>"
    if _flag_note(board):
        notes += f"<p><b>Note:</b> {html_text(_flag_note(board) or '')}</p>"
    notes += f"<p>{html_text(LEGEND.format(gt='italic rows'))}</p>"
    return notes + "".join(f'<p class="note">{html_text(note)}</p>'
                           for note in _uncertainty_notes(board) + _reference_notes(board))


def to_html(board: Leaderboard) -> str:
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>tvbench leaderboard</title>"
            "<style>table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #ccc}"
            "td{text-align:right}td:first-child,td:nth-child(2){text-align:left}</style></head><body>\n"
            f"{html_notes(board)}\n{html_table(board)}\n</body></html>\n")


RENDERERS: dict[str, Callable[[Leaderboard], str]] = {
    "markdown": to_markdown, "latex": to_latex, "csv": to_csv, "json": to_json, "html": to_html,
}


def render(board: Leaderboard, fmt: str) -> str:
    try:
        return RENDERERS[fmt](board)
    except KeyError:
        raise ConfigError(f"unknown report format {fmt!r}; choose one of {', '.join(RENDERERS)}") from None
