"""``tvbench report RESULTS --reference paper:f5``: the published value beside each cell, the difference, and a
reproduced / not reproduced mark, in every format, through the installed entry point."""

from __future__ import annotations

import csv
import io
import json

import pytest
from conftest import run_tvbench

from tvbench.reference import load_reference
from tvbench.testing.results import declaration, write_results

F5_METHODS = ("dragdiffusion", "dragnoise", "clipdrag", "gooddrag", "geodrag", "tvedit-qwen")
METRICS = {"dragbench_if": declaration("IF (DragBench)", range=[0.0, 1.0]),
           "dragbench_md_dift": declaration("MD (DragBench)", higher_is_better=False, range=[0.0, None])}


def published() -> dict[tuple[str, str], float]:
    return {(row.tvbench_method, row.metric): row.value for row in load_reference("paper:f5").rows
            if row.tvbench_method}


@pytest.fixture
def far(tmp_path):
    """DragBench-like results far from the paper's numbers (as tiny weights give): 12 cases per method."""
    values = {m: {"dragbench_if": [0.5 + 0.01 * k for k in range(12)],
                  "dragbench_md_dift": [80.0 + k for k in range(12)]} for m in F5_METHODS}
    write_results(tmp_path / "far", values, METRICS, inputs={m: "M+P+T" for m in F5_METHODS})
    return tmp_path / "far"


def test_every_f5_method_shows_its_published_numbers_and_is_not_reproduced(far):
    result = run_tvbench("report", str(far), "--reference", "paper:f5")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    mean_if, mean_md = 0.5 + 0.01 * 5.5, 80.0 + 5.5
    for (method, metric), value in published().items():
        if method not in F5_METHODS:
            continue
        line = next(line for line in text.splitlines() if line.startswith(f"| {method} "))
        ours = mean_if if metric == "dragbench_if" else mean_md
        printed = f"{value:.2f}"
        assert f"paper {printed} ({ours - value:+.4f}) ✗" in line, (method, metric, line)
    assert "Not compared: not in the scores: adaptivedrag, lightningdrag, draglora" in text.replace("\n", " ")


def test_a_value_inside_the_interval_is_marked_reproduced(tmp_path):
    """dragdiffusion's cases spread around the published IF (0.88) and MD (32.13): the interval holds them."""
    values = {"dragdiffusion": {"dragbench_if": [0.78 + 0.02 * k for k in range(11)],
                                "dragbench_md_dift": [27.13 + k for k in range(11)]}}
    write_results(tmp_path / "near", values, METRICS, inputs={"dragdiffusion": "M+P+T"})
    result = run_tvbench("report", str(tmp_path / "near"), "--reference", "paper:f5", "--format", "json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    cells = payload["rows"][0]["metrics"]
    assert cells["dragbench_if"]["published"]["verdict"] == "reproduced"
    assert cells["dragbench_md_dift"]["published"]["verdict"] == "reproduced"
    assert cells["dragbench_if"]["published"]["difference"] == pytest.approx(0.88 - 0.88, abs=1e-9)
    assert payload["reference"]["id"] == "paper:f5" and "no interval of its own" in " ".join(
        payload["reference"]["notes"])


def test_csv_latex_and_html_carry_the_published_columns(far):
    rows = list(csv.DictReader(io.StringIO(run_tvbench("report", str(far), "--reference", "paper:f5",
                                                       "--format", "csv").stdout)))
    row = next(r for r in rows if r["method"] == "gooddrag")
    assert float(row["dragbench_if_published"]) == 0.87 and row["dragbench_if_verdict"] == "not reproduced"
    assert float(row["dragbench_md_dift_difference"]) == pytest.approx(85.5 - 24.26)
    latex = run_tvbench("report", str(far), "--reference", "paper:f5", "--format", "latex").stdout
    assert "/ paper 0.87 (" in latex and r"$\times$" in latex
    page = run_tvbench("report", str(far), "--reference", "paper:f5", "--format", "html",
                       "--output", str(far / "g")).returncode
    assert page == 0 and 'class="published" title="not reproduced">✗' in (far / "g" / "index.html").read_text()


def test_an_unknown_reference_is_refused_in_one_line(far):
    result = run_tvbench("report", str(far), "--reference", "paper:table9")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "paper:f5" in result.stderr
