"""Marks that claim no more than the data holds: group metrics resampled and tested by group, no interval from
too few units, tied methods marked alike, asymmetric intervals as bounds, partial groups not ranked, compare's
JSON at full precision, and the analysis API the README names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tvbench.analysis.bootstrap import MIN_UNITS, Units, confidence_interval
from tvbench.analysis.compare import compare_results, render_comparison
from tvbench.analysis.frames import load_scores
from tvbench.analysis.units import units_for
from tvbench.report.leaderboard import build_leaderboard
from tvbench.report.render import render
from tvbench.testing.results import declaration, write_results

SEMANTIC = declaration("Sem. acc.", group_statistic="mean", headline="group_mean", range=[0.0, 1.0])
RHO = declaration("Mag. ρ", group_statistic="spearman", headline="group_mean", range=[-1.0, 1.0])


def semantic_results(folder: Path, groups: int = 12, per_group: int = 3) -> dict:
    """``text`` is right in every case; ``blind`` in exactly one case of each group (chance: 1/3)."""
    cases = groups * per_group
    right = [1.0] * cases
    blind = [1.0 if k % per_group == 0 else 0.0 for k in range(cases)]
    extras = {m: {"semantic_acc": [{"group": f"g{k // per_group}"} for k in range(cases)]} for m in ("text", "blind")}
    return write_results(folder, {"text": {"semantic_acc": right}, "blind": {"semantic_acc": blind}},
                         {"semantic_acc": SEMANTIC}, extras=extras)


def test_semantic_accuracy_is_resampled_and_tested_over_groups(tmp_path):
    summary = semantic_results(tmp_path)
    stats = summary["methods"]["blind"]["metrics"]["semantic_acc"]
    assert stats["group_mean"] == pytest.approx(1 / 3) and stats["units"] == 12
    units = units_for(load_scores(tmp_path), "blind", "semantic_acc", summary["metrics"]["semantic_acc"])
    assert len(units) == 12 and set(units.ids) == {f"g{k}" for k in range(12)}
    # a method exactly at chance in every group has no spread over groups: its interval is the point 1/3
    assert stats["ci"]["low"] == pytest.approx(1 / 3) and stats["ci"]["high"] == pytest.approx(1 / 3)
    table = compare_results(tmp_path, "text", "blind").table
    row = table[table["metric"] == "semantic_acc"].iloc[0]
    assert row["units"] == 12  # groups paired, not 36 cases


def test_no_interval_below_the_minimum_and_the_value_carries_its_n(tmp_path):
    values = {"a": {"ds": [0.1, 0.5, 0.9]}, "b": {"ds": [0.2, 0.4, 0.6]}}
    summary = write_results(tmp_path, values, {"ds": declaration("DS", range=[0.0, 1.0])})
    stats = summary["methods"]["a"]["metrics"]["ds"]
    assert stats["ci"] is None and stats["units"] == 3
    text = render(build_leaderboard(summary), "markdown")
    assert "0.5000 (n=3)" in text and f"fewer than the {MIN_UNITS}" in text
    assert confidence_interval(Units.of(range(MIN_UNITS - 1))) is None
    assert confidence_interval(Units.of(range(MIN_UNITS))) is not None
    compared = render_comparison(compare_results(tmp_path, "a", "b"))
    assert "[" not in compared.split("\n")[2]  # the difference without an interval
    assert "too few for an interval" in compared


def test_identical_methods_carry_identical_marks_in_every_format(tmp_path):
    series = [0.1 * k for k in range(12)]
    values = {"copy-1": {"ds": series}, "copy-2": {"ds": list(series)}, "worse": {"ds": [v / 2 for v in series]}}
    summary = write_results(tmp_path, values, {"ds": declaration("DS")})
    board = build_leaderboard(summary)
    cells = {row.method: row.cells["ds"] for row in board.rows}
    assert cells["copy-1"].rank == cells["copy-2"].rank == 1 and cells["copy-1"].tied and cells["copy-2"].tied
    for fmt in ("markdown", "latex", "html"):
        text = render(board, fmt)
        lines = {name: next(line for line in text.splitlines() if name in line and "0.5500" in line)
                 for name in ("copy-1", "copy-2")}
        assert lines["copy-1"].replace("copy-1", "X") == lines["copy-2"].replace("copy-2", "X"), fmt


def test_asymmetric_intervals_are_shown_as_bounds():
    summary = {"metrics": {"rho": {"label": "rho", "higher_is_better": True, "headline": "mean",
                                   "range": [-1.0, 1.0]}},
               "methods": {"m": {"inputs": "I", "metrics": {"rho": {"mean": 0.5, "n": 20, "applicable": 20,
                                                                   "units": 20,
                                                                   "ci": {"low": -0.5, "high": 1.0}}}},
                           "s": {"inputs": "I", "metrics": {"rho": {"mean": 0.2, "n": 20, "applicable": 20,
                                                                   "units": 20,
                                                                   "ci": {"low": 0.1, "high": 0.3}}}}}}
    text = render(build_leaderboard(summary), "markdown")
    assert "0.5000 [-0.5000, 1.0000]" in text and "±" not in text.split("0.2000")[0].split("\n")[-1]
    assert "0.2000 ± 0.1000" in text


def test_a_statistic_defined_in_a_minority_of_groups_is_not_ranked(tmp_path):
    groups = 3
    requested = [0.1, 0.2, 0.3] * groups
    moves = [0.1, 0.2, 0.3] * groups  # defined (and perfect) in every group
    still = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.05, 0.1, 0.2]  # defined only in the last group
    extras = {m: {"magnitude_rho": [{"group": f"g{k // 3}", "requested": r} for k, r in enumerate(requested)]}
              for m in ("moves", "still")}
    summary = write_results(tmp_path, {"moves": {"magnitude_rho": moves}, "still": {"magnitude_rho": still}},
                            {"magnitude_rho": RHO}, extras=extras)
    board = build_leaderboard(summary)
    cells = {row.method: row.cells["magnitude_rho"] for row in board.rows}
    assert cells["still"].rank is None and cells["still"].groups == (1, 3)
    assert "(1/3 groups)" in render(board, "markdown")


def test_compare_json_keeps_full_precision(tmp_path):
    a = [1.0 + 1e-13 * k for k in range(12)]
    b = [1.0] * 12
    write_results(tmp_path, {"a": {"ds": a}, "b": {"ds": b}}, {"ds": declaration("DS")})
    records = json.loads(render_comparison(compare_results(tmp_path, "a", "b"), "json"))["metrics"]
    assert 0 < records[0]["difference"] < 1e-11


def test_the_documented_analysis_example_runs_as_written(tmp_path, monkeypatch):
    """The docs' pandas section, both blocks, on a results folder named ``results`` with those methods."""
    page = (Path(__file__).resolve().parents[1] / "docs" / "uncertainty.md").read_text()
    section = page[page.index("## pandas API"):]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 2
    series = [0.1 * k for k in range(12)]
    write_results(tmp_path / "results", {"identity": {"ds_global_tgt": series}, "tps-warp": {"ds_global_tgt": series}},
                  {"ds_global_tgt": declaration("DS")}, inputs={"identity": "I", "tps-warp": "I+P"})
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(blocks[0] + blocks[1], "README.md", "exec"), namespace)
    assert len(namespace["table"]) == 1 and namespace["interval"] is not None


def test_the_gallery_finds_edits_the_way_scoring_does(tmp_path):
    """A method whose edits are JPEGs: scored, and shown in every cell of the gallery (not "no edit")."""
    from PIL import Image

    from conftest import shifted_cases, write_bench
    from tvbench.cases import load_benchmark
    from tvbench.methods import create_method
    from tvbench.runner import run_method
    from tvbench.scoring import ScoringConfig, score_results
    from tvbench.report.gallery import write_gallery

    records, images = shifted_cases(3)
    bench_dir = write_bench(tmp_path / "bench", records, images)
    results = tmp_path / "results"
    run_method(create_method("identity"), load_benchmark(bench_dir), results, progress=False)
    (results / "jpeg").mkdir()
    for png in (results / "identity").glob("*.png"):
        Image.open(png).convert("RGB").save(results / "jpeg" / f"{png.stem}.jpg", quality=95)
    summary = score_results(results, ScoringConfig(metrics=["ds_global_tgt"], smoke=True, resolution=64,
                                                   device="cpu", feature_cache=None, bootstrap=200),
                            bench_spec=str(bench_dir), progress=False)
    assert summary["methods"]["jpeg"]["metrics"]["ds_global_tgt"]["n"] == 3
    page = write_gallery(results, results / "gallery", summary, build_leaderboard(summary)).read_text()
    cells = re.findall(r'<td class="edit" data-method="jpeg">(.*?)</td>', page, flags=re.S)
    assert len(cells) == 3 and all("no edit" not in cell and ".jpg" in cell for cell in cells)


def test_gallery_subtask_entries_say_what_they_show():
    """A magnitude case shows its group's ρ (and sorts by it) and, once, the displacement achieved and requested."""
    from tvbench.report.gallery import _scores_list

    declared = {"magnitude_rho": {**RHO, "case_value": "displacement achieved"},
                "magnitude_order": declaration("Mag. order", group_statistic="ordered", headline="group_mean")}
    rows = {m: {"metric": m, "status": "ok", "value": 0.0037, "requested": 0.05, "group": "g1"}
            for m in declared}
    groups = {"magnitude_rho": {"g1": {"value": 0.5, "status": "ok"}},
              "magnitude_order": {"g1": {"value": None, "status": "undefined"}}}
    html = _scores_list(rows, list(declared), declared, groups)
    assert 'data-metric="magnitude_rho" data-value="0.5"' in html and "Mag. ρ (group g1): <span>0.5000" in html
    assert "Mag. order (group g1): <span>undefined" in html
    assert html.count("displacement:") == 1 and "0.0037 achieved, 0.0500 requested" in html
