"""Leaderboard ranking and rendering in every format."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import subprocess
import sys

import pytest

from tvbench.errors import ConfigError, ResultsError
from tvbench.report import RENDERERS, build_leaderboard, load_summary, render
from tvbench.report.render import html_table


def stats(mean, n=3, applicable=3):
    return {"mean": mean, "n": n, "applicable": applicable, "coverage": n / applicable if applicable else None}


@pytest.fixture
def summary():
    metrics = {
        "lpips_tgt": {"label": "LPIPS^tgt", "latex": "LPIPS", "higher_is_better": False},
        "ds_global_tgt": {"label": "DS_global^tgt", "latex": "DS", "higher_is_better": True},
    }
    methods = {
        "oracle": {"inputs": "GT", "metrics": {"ds_global_tgt": stats(1.0), "lpips_tgt": stats(0.0)}},
        "a": {"inputs": "M+T", "metrics": {"ds_global_tgt": stats(0.90), "lpips_tgt": stats(0.20)}},
        "b": {"inputs": "I", "metrics": {"ds_global_tgt": stats(0.95), "lpips_tgt": stats(0.30, n=2)}},
        "c": {"inputs": "I+T", "metrics": {"ds_global_tgt": stats(0.80), "lpips_tgt": stats(0.25)}},
        "d": {"inputs": "T", "metrics": {"ds_global_tgt": stats(None, 0, 0), "lpips_tgt": stats(None, 0, 3)}},
    }
    return {"kind": "tvbench.scores", "benchmark": {"name": "toy", "hash": "sha256:" + "ab" * 32, "n_cases": 3},
            "scorer": {"models": {"dino": {"id": "x", "resolution": 448}, "lpips": {"net": "alex"}}, "smoke": False},
            "metrics": metrics, "methods": methods}


def test_ranking_is_direction_aware_and_skips_ground_truth_readers(summary):
    board = build_leaderboard(summary)
    assert [c.name for c in board.columns] == ["ds_global_tgt", "lpips_tgt"]  # Table 1 order
    assert [r.method for r in board.rows] == ["a", "b", "c", "d", "oracle"]
    cells = {r.method: r.cells for r in board.rows}
    assert cells["b"]["ds_global_tgt"].rank == 1 and cells["a"]["ds_global_tgt"].rank == 2
    assert cells["a"]["lpips_tgt"].rank == 1 and cells["c"]["lpips_tgt"].rank == 2
    assert cells["oracle"]["ds_global_tgt"].rank is None


def test_markdown(summary):
    text = render(build_leaderboard(summary), "markdown")
    assert "DS_global^tgt ↑" in text and "LPIPS^tgt ↓" in text
    assert "**0.9500**" in text and "<u>0.9000</u>" in text and "**0.2000**" in text
    assert "0.3000 (2/3)" in text  # partial coverage shown
    assert "| n/a " in text and "| – " in text  # not applicable vs nothing scored
    assert "*oracle*" in text and "toy (abababababab, 3 cases)" in text
    assert "smoke" not in text


def test_smoke_results_carry_a_warning(summary):
    summary["scorer"]["smoke"] = True
    for fmt in ("markdown", "latex", "html"):
        assert "randomly initialised" in render(build_leaderboard(summary), fmt)


def test_latex(summary):
    text = render(build_leaderboard(summary), "latex")
    assert r"\textbf{0.9500}" in text and r"\underline{0.9000}" in text and r"$\uparrow$" in text
    assert text.count(r"\\") == 1 + 5 and r"\begin{tabular}{llcc}" in text


def test_csv_and_json_carry_raw_numbers(summary):
    board = build_leaderboard(summary)
    table = list(csv.DictReader(io.StringIO(render(board, "csv"))))
    assert table[1]["method"] == "b" and float(table[1]["ds_global_tgt"]) == 0.95
    assert table[1]["ds_global_tgt_rank"] == "1"
    assert table[1]["lpips_tgt_n"] == "2"
    payload = json.loads(render(board, "json"))
    assert payload["rows"][0]["metrics"]["lpips_tgt"]["rank"] == 1


def test_html_escapes(summary):
    summary["methods"]["<script>"] = summary["methods"].pop("c")
    text = render(build_leaderboard(summary), "html")
    assert "<script>" not in text and "&lt;script&gt;" in text and "<b>0.9500</b>" in text


def test_unknown_format_and_missing_summary(summary, tmp_path):
    with pytest.raises(ConfigError, match="choose one of"):
        render(build_leaderboard(summary), "docx")
    with pytest.raises(ResultsError, match="run `tvbench score` first"):
        load_summary(tmp_path)
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(ResultsError, match="not a tvbench scoring summary"):
        load_summary(tmp_path)


def test_cli_report_writes_every_format(summary, tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    for fmt in RENDERERS:
        out = tmp_path / f"board.{fmt}"
        result = subprocess.run([sys.executable, "-m", "tvbench", "report", str(tmp_path), "--format", fmt,
                                 "--output", str(out)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        if fmt == "html":  # the gallery page; beside a bare summary it holds the leaderboard and says why no cases
            page = out.read_text()
            assert html_table(build_leaderboard(summary)) in page and "Cases and edits not shown" in page
        else:
            assert out.read_text() == render(build_leaderboard(summary), fmt)


def test_partial_coverage_is_never_ranked_against_complete_columns(summary):
    """tps24 at 5/23 once got the bold on DS_global: a mean over other cases is not comparable."""
    summary["methods"]["partial"] = {"inputs": "T", "metrics": {"ds_global_tgt": stats(0.99, n=1),
                                                                "lpips_tgt": stats(0.01, n=2)}}
    board = build_leaderboard(summary)
    cells = {r.method: r.cells for r in board.rows}
    assert cells["partial"]["ds_global_tgt"].rank is None and cells["partial"]["lpips_tgt"].rank is None
    assert cells["b"]["ds_global_tgt"].rank == 1 and cells["a"]["lpips_tgt"].rank == 1
    for fmt in ("markdown", "html"):
        text = render(board, fmt)
        assert "0.9900 (1/3)" in text and "among the methods scored on every applicable case" in text
    assert "**0.9900**" not in render(board, "markdown") and r"\textbf{0.9900}" not in render(board, "latex")


# Hostile names (a method folder, a benchmark.json name) and what each format must turn them into.
HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "a|b", "back\\slash", "new\nline",
           "tilde~caret^", "&amp;", "50% $x$ #1 {y} under_score", "[link](javascript:alert(1))", "`code` *em*"]
LATEX = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#", "%": r"\%",
         "_": r"\_", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
         ">": r"\textgreater{}", "|": r"\textbar{}", "\n": " "}


def hostile_board(summary, name):
    summary["methods"][name] = summary["methods"].pop("c")
    summary["methods"][name]["inputs"] = name
    summary["benchmark"]["name"] = name
    return build_leaderboard(summary)


def _table_lines(text):
    return [line for line in text.splitlines() if line.startswith("|")]


@pytest.mark.parametrize("name", HOSTILE)
def test_markdown_shows_hostile_names_as_text(summary, name):
    text = render(hostile_board(summary, name), "markdown")
    assert "<script" not in text and "<img" not in text and not re.search(r"(?<!\\)\]\(javascript", text)
    lines = _table_lines(text)
    assert len(lines) == 2 + 5  # header, rule, five methods: no row broken by a | or a newline
    cells = {len(re.split(r"(?<!\\)\|", line)) for line in lines}
    assert len(cells) == 1, lines  # every row has as many unescaped | as the header
    row = next(line for line in lines if line.startswith("| ") and "0.8000" in line)
    shown = re.split(r"(?<!\\)\|", row)[1].strip()
    unescaped = html.unescape(re.sub(r"\\(.)", r"\1", shown))
    assert unescaped == name.replace("\n", " ")


@pytest.mark.parametrize("char", sorted(LATEX))
def test_latex_escapes_every_special_character(summary, char):
    name = f"m{char}x"
    text = render(hostile_board(summary, name), "latex")
    assert f"m{LATEX[char]}x & m{LATEX[char]}x &" in text
    head = text.split(r"\begin{tabular}")[0].splitlines()
    assert all(line.startswith("%") for line in head), head  # a newline never escapes the comment


@pytest.mark.parametrize("name", HOSTILE)
def test_html_csv_and_json_keep_hostile_names_inert_and_exact(summary, name):
    board = hostile_board(summary, name)
    page = render(board, "html")
    assert "<script" not in page and "<img" not in page and html.escape(name) in page
    assert "Best in bold, second underlined" in page  # the legend the Markdown has
    rows = list(csv.DictReader(io.StringIO(render(board, "csv"))))
    assert name in [row["method"] for row in rows]
    assert name in [row["method"] for row in json.loads(render(board, "json"))["rows"]]


def test_cli_report_of_hostile_names_holds_no_live_markup(summary, tmp_path):
    hostile_board(summary, "<script>x</script>|")
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    from conftest import run_tvbench

    result = run_tvbench("report", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "<script>" not in result.stdout and "&lt;script&gt;x&lt;/script&gt;\\|" in result.stdout
