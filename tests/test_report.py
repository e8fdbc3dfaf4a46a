"""Leaderboard ranking and rendering in every format."""

from __future__ import annotations

import csv
import io
import json
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
