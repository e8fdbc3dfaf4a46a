"""`tvbench compare` on results with known differences, the leaderboard's tie marks and intervals in every
report format, the pandas loaders, and plots."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest

import tvbench
from tvbench.analysis.compare import compare_results
from tvbench.analysis.paired import Settings
from tvbench.errors import ConfigError
from tvbench.report import build_leaderboard, render
from tvbench.testing.results import declaration, write_results

N = 60


@pytest.fixture(scope="module")
def known(tmp_path_factory):
    """Method b differs from a by design: clearly better on `shift` and `lower`, not at all on `noise` (pure noise),
    and by a hair on `tiny` (a real but small shift, under the noise)."""
    rng = np.random.default_rng(7)
    base = rng.uniform(0.3, 0.7, N)

    def noise(scale=0.02):
        return rng.normal(0.0, scale, N)

    a = {"shift": base + noise(), "noise": base + noise(), "tiny": base + noise(), "lower": base + noise()}
    b = {"shift": base + 0.05 + noise(), "noise": base + noise(), "tiny": base + 0.001 + noise(),
         "lower": base - 0.05 + noise()}
    oracle = {name: np.full(N, 1.0) for name in a}
    metrics = {"shift": declaration("Shift"), "noise": declaration("Noise"), "tiny": declaration("Tiny"),
               "lower": declaration("Lower", higher_is_better=False)}
    folder = tmp_path_factory.mktemp("known") / "results"
    as_lists = {m: {k: [float(x) for x in v] for k, v in values.items()} for m, values in
                {"a": a, "b": b, "oracle": oracle}.items()}
    summary = write_results(folder, as_lists, metrics, inputs={"a": "I+T", "b": "M+T", "oracle": "GT"})
    return folder, summary


def run_compare(*args):
    return subprocess.run([sys.executable, "-m", "tvbench", "compare", *map(str, args)], capture_output=True,
                          text=True)


def test_compare_separates_real_differences_from_noise(known):
    folder, _ = known
    done = run_compare(folder, "--methods", "b,a", "--format", "json", "--bootstrap", "2000")
    assert done.returncode == 0, done.stderr
    table = {row["metric"]: row for row in json.loads(done.stdout)["metrics"]}
    assert table["shift"]["significant"] and table["shift"]["better"] == "b"
    assert table["shift"]["ci_low"] > 0.04 and table["shift"]["ci_high"] < 0.06
    assert table["lower"]["significant"] and table["lower"]["better"] == "b"  # lower is better: b's -0.05 wins
    assert not table["noise"]["significant"] and table["noise"]["ci_low"] < 0 < table["noise"]["ci_high"]
    assert not table["tiny"]["significant"]
    assert table["noise"]["p_holm"] >= table["noise"]["p_value"]  # Holm never lowers a p-value
    text = run_compare(folder, "--methods", "b,a", "--bootstrap", "500").stdout
    assert "b better" in text and "no significant difference" in text and "Holm" in text


def test_compare_names_bad_input(known):
    folder, _ = known
    for args, message in ((["--methods", "a"], "name two different methods"),
                          (["--methods", "a,zzz", "--bootstrap", "300"], "no method 'zzz'")):
        done = run_compare(folder, *args)
        assert done.returncode == 2 and message in done.stderr and done.stderr.count("\n") == 1, done.stderr
    with pytest.raises(ConfigError, match="nope not scored"):
        compare_results(folder, "a", "b", ["nope"])
    with pytest.raises(ConfigError, match="--ci 95"):
        compare_results(folder, "a", "b", settings=Settings(level=95))


def test_leaderboard_marks_ties_and_shows_intervals_in_every_format(known):
    _, summary = known
    leaders = summary["significance"]["leaders"]
    assert not leaders["shift"]["tied"] and leaders["noise"]["tied"] and leaders["tiny"]["tied"]
    board = build_leaderboard(summary)
    cells = {row.method: row.cells for row in board.rows}
    assert cells["b"]["shift"].rank == 1 and not cells["b"]["shift"].tied
    assert {cells["a"]["noise"].tied, cells["b"]["noise"].tied} == {True}
    markdown = render(board, "markdown")
    assert " ± " in markdown and "≈" in markdown and "bootstrap confidence interval" in markdown
    low, high = summary["methods"]["b"]["metrics"]["shift"]["ci"]["low"], summary["methods"]["b"]["metrics"]["shift"][
        "ci"]["high"]
    assert f"[{low:.4f}, {high:.4f}]" in render(build_leaderboard(summary, ci_style="bounds"), "markdown")
    assert "±" not in render(build_leaderboard(summary, ci_style="none"), "markdown").split("\n\n")[2]
    assert r"$^{\approx}$" in render(board, "latex") and r"$\pm$" in render(board, "latex")
    table = list(csv.DictReader(io.StringIO(render(board, "csv"))))
    assert float(table[1]["shift_ci_low"]) == pytest.approx(low) and table[0]["noise_tied"] == "1"
    payload = json.loads(render(board, "json"))
    assert payload["rows"][1]["metrics"]["shift"]["ci"] == [low, high] and payload["uncertainty"]["resamples"] == 1000
    assert "≈" in render(board, "html")


def test_report_recomputes_intervals_from_the_rows(known):
    folder, summary = known
    done = subprocess.run([sys.executable, "-m", "tvbench", "report", str(folder), "--format", "json", "--ci", "0.5",
                           "--bootstrap", "300"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    narrow = json.loads(done.stdout)["rows"][1]["metrics"]["shift"]["ci"]
    wide = summary["methods"]["b"]["metrics"]["shift"]["ci"]
    assert narrow[1] - narrow[0] < wide["high"] - wide["low"]


def test_pandas_loaders(known):
    folder, summary = known
    scores = tvbench.load_scores(folder)
    assert len(scores) == 3 * 4 * N and set(scores["status"]) == {"ok"}
    assert scores.pivot_table(index="case", columns="method", values="value", aggfunc="first").shape == (N, 3)
    frame = tvbench.load_summary(folder / "summary.json")
    row = frame[(frame["method"] == "b") & (frame["metric"] == "shift")].iloc[0]
    assert row["value"] == pytest.approx(summary["methods"]["b"]["metrics"]["shift"]["mean"])
    assert row["ci_low"] < row["value"] < row["ci_high"] and row["headline"] == "mean" and row["status"] == "ok"


def test_plots(known):
    pytest.importorskip("matplotlib")
    folder, _ = known
    done = subprocess.run([sys.executable, "-m", "tvbench", "report", str(folder), "--plots", "-o",
                           str(folder / "x.md")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (folder / "plots").glob("*.png")) == \
        ["metric-lower.png", "metric-noise.png", "metric-shift.png", "metric-tiny.png"]
    assert (folder / "plots" / "metric-shift.svg").read_text().lstrip().startswith("<?xml")


def test_version_1_summaries_still_report_and_load(tmp_path):
    stats = {"mean": 0.5, "n": 3, "applicable": 3, "coverage": 1.0}
    summary = {"kind": "tvbench.scores", "schema_version": 1, "benchmark": {"name": "old", "hash": "sha256:00"},
               "scorer": {"models": {}}, "metrics": {"ds_global_tgt": declaration("DS_global^tgt")},
               "methods": {"a": {"inputs": "I", "metrics": {"ds_global_tgt": stats}}}}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    done = subprocess.run([sys.executable, "-m", "tvbench", "report", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0 and "**0.5000**" in done.stdout and "±" not in done.stdout, done.stderr
    frame = tvbench.load_summary(tmp_path)
    assert frame["value"].tolist() == [0.5] and frame["ci_low"].isna().all()
