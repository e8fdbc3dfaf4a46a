"""Scoring results folders: rows, summary, reuse of earlier rows, outside edits, partial coverage, bad edits."""

from __future__ import annotations

import json
import shutil
import threading
import time

import numpy as np
import pytest
from PIL import Image

from tvbench.cases import load_benchmark
from tvbench.errors import ResultsError
from tvbench.io import read_jsonl
from tvbench.methods import create_method
from tvbench.runner import run_method
from tvbench.scoring import Scorer, ScoringConfig, score_results

TWO = ["ds_global_tgt", "lpips_tgt"]  # these tests are about the scoring loop; test_image_metrics covers the rest
SMOKE = ScoringConfig(metrics=TWO, smoke=True, resolution=128, match_resolution=128, device="cpu", feature_cache=None)


@pytest.fixture
def results(small_bench, tmp_path):
    bench = load_benchmark(small_bench)
    out = tmp_path / "results"
    for name in ("identity", "oracle", "tps-warp"):
        run_method(create_method(name), bench, out, progress=False)
    return out


def rows_of(out):
    return [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]


def test_scores_every_method_case_and_metric(results):
    summary = score_results(results, SMOKE, progress=False)
    rows = rows_of(results)
    assert len(rows) == 3 * 3 * 2
    assert {r["status"] for r in rows} == {"ok"}
    assert set(rows[0]) >= {"case", "method", "metric", "value", "status"}
    oracle = [r for r in rows if r["method"] == "oracle"]
    assert all(r["value"] == (1.0 if r["metric"] == "ds_global_tgt" else 0.0) for r in oracle)
    for case in ("case-0", "case-1", "case-2"):  # identity is strictly worse than the oracle on every case
        by = {(r["method"], r["metric"]): r["value"] for r in rows if r["case"] == case}
        assert by["identity", "ds_global_tgt"] < by["oracle", "ds_global_tgt"]
        assert by["identity", "lpips_tgt"] > by["oracle", "lpips_tgt"]
    assert summary["schema_version"] == 2 and summary["benchmark"]["hash"].startswith("sha256:")
    dino = summary["scorer"]["models"]["dino"]
    assert dino["id"] == "random-tiny" and dino["resolution"] == 128 and dino["revision"]
    assert summary["scorer"]["models"]["lpips"]["net"] == "alex"
    assert "packages" in summary["environment"]
    identity = summary["methods"]["identity"]
    assert identity["inputs"] == "-" and identity["metrics"]["lpips_tgt"]["coverage"] == 1.0
    assert summary["methods"]["tps-warp"]["inputs"] == "M+T"
    assert json.loads((results / "summary.json").read_text()) == summary


def test_rescoring_reuses_rows_and_scores_only_what_changed(results, monkeypatch):
    score_results(results, SMOKE, progress=False)
    calls = []
    original = Scorer.score

    def counting(self, case, edit, images, store, metrics=None, edit_original=None):
        calls.append(case.id)
        return original(self, case, edit, images, store, metrics, edit_original)

    monkeypatch.setattr(Scorer, "score", counting)
    first = rows_of(results)
    score_results(results, SMOKE, progress=False)
    assert calls == [] and rows_of(results) == first
    # A new method folder: only its edits are scored.
    shutil.copytree(results / "identity", results / "identity-copy")
    score_results(results, SMOKE, progress=False)
    assert len(calls) == 3
    # Another resolution is another DINO configuration: DINO rows recomputed, LPIPS rows reused.
    calls.clear()
    summary = score_results(results, ScoringConfig(metrics=TWO, smoke=True, resolution=64, device="cpu",
                                                   feature_cache=None), progress=False)
    assert len(calls) == 4 * 3 and summary["scorer"]["models"]["dino"]["resolution"] == 64


def test_features_are_computed_once_per_distinct_image(results, monkeypatch):
    from tvbench.features import FeatureStore

    forwards = []
    original = FeatureStore.prefetch

    def spy(self, images, resolution=None):
        before = self.forwards
        original(self, images, resolution)
        forwards.append(self.forwards - before)

    monkeypatch.setattr(FeatureStore, "prefetch", spy)
    score_results(results, SMOKE, progress=False)
    # per case: the target, identity's edit (= source) and tps-warp's edit; the oracle's edit is the target
    assert sum(forwards) == 3 * 3


def test_an_image_shared_by_cases_is_encoded_once(tmp_path, monkeypatch):
    from conftest import shifted_cases, write_bench

    from tvbench.features import FeatureStore

    records, images = shifted_cases(n=2)
    records[1]["source"] = records[0]["source"]  # a magnitude group: one source, two targets
    records[1]["mask_source"] = records[0]["mask_source"]
    bench = load_benchmark(write_bench(tmp_path / "b", records, images))
    run_method(create_method("identity"), bench, tmp_path / "out", progress=False)
    stores = []
    original = FeatureStore.__init__

    def keep(self, *args, **kwargs):
        original(self, *args, **kwargs)
        stores.append(self)

    monkeypatch.setattr(FeatureStore, "__init__", keep)
    score_results(tmp_path / "out", SMOKE, progress=False)
    assert [store.forwards for store in stores] == [3]  # two targets and the one shared source


def test_outside_edits_need_the_benchmark(small_bench, results, tmp_path):
    mine = tmp_path / "my-method"
    mine.mkdir()
    for path in (results / "tps-warp").glob("*.png"):
        shutil.copy(path, mine / path.name)
    with pytest.raises(ResultsError, match="pass --bench"):
        score_results(mine, SMOKE, progress=False)
    summary = score_results(mine, SMOKE, bench_spec=str(small_bench), progress=False)
    assert list(summary["methods"]) == ["my-method"]
    assert summary["methods"]["my-method"]["source"] == "external edits"
    assert summary["methods"]["my-method"]["metrics"]["ds_global_tgt"]["n"] == 3


def test_missing_resized_and_corrupt_edits(results):
    tps = results / "tps-warp"
    (tps / "case-0.png").unlink()
    (tps / "case-1.png").write_bytes(b"garbage")
    identity = results / "identity"
    image = Image.open(identity / "case-2.png")
    image.resize((image.width // 2, image.height // 2)).save(identity / "case-2.png")
    summary = score_results(results, SMOKE, progress=False)
    rows = {(r["method"], r["case"], r["metric"]): r for r in rows_of(results)}
    assert rows["tps-warp", "case-0", "lpips_tgt"]["status"] == "missing"
    corrupt = rows["tps-warp", "case-1", "ds_global_tgt"]
    assert corrupt["status"] == "error" and "cannot decode case-1.png" in corrupt["detail"]
    assert rows["tps-warp", "case-2", "ds_global_tgt"]["status"] == "ok"
    assert rows["identity", "case-2", "lpips_tgt"]["resized"] is True
    stats = summary["methods"]["tps-warp"]["metrics"]["ds_global_tgt"]
    assert (stats["n"], stats["applicable"], stats["status_counts"]["missing"]) == (1, 3, 1)
    assert summary["methods"]["identity"]["resized_edits"] == 1


def test_cases_without_target_are_not_applicable_even_without_an_edit(tmp_path):
    from conftest import shifted_cases, write_bench

    records, images = shifted_cases(n=2)
    del records[1]["target"]
    bench = load_benchmark(write_bench(tmp_path / "b", records, images))
    run_method(create_method("oracle"), bench, tmp_path / "out", progress=False)  # fails on case-1: no image
    summary = score_results(tmp_path / "out", SMOKE, progress=False)
    stats = summary["methods"]["oracle"]["metrics"]["lpips_tgt"]
    assert (stats["n"], stats["applicable"], stats["coverage"]) == (1, 1, 1.0)
    assert stats["status_counts"]["not_applicable"] == 1 and stats["status_counts"]["missing"] == 0


def test_a_changed_benchmark_is_refused(small_bench, results):
    path = small_bench / "img/case-0.tgt.png"
    array = np.asarray(Image.open(path)).copy()
    array[0, 0] ^= 255
    Image.fromarray(array).save(path)
    with pytest.raises(ResultsError, match="was run on benchmark"):
        score_results(results, SMOKE, progress=False)


def test_a_killed_scoring_run_keeps_its_rows(results, monkeypatch):
    calls = []
    original = Scorer.score

    def dies_on_third_case(self, case, edit, images, store, metrics=None, edit_original=None):
        if case.id == "case-2":
            raise KeyboardInterrupt
        calls.append(case.id)
        return original(self, case, edit, images, store, metrics, edit_original)

    monkeypatch.setattr(Scorer, "score", dies_on_third_case)
    with pytest.raises(KeyboardInterrupt):
        score_results(results, SMOKE, progress=False)
    memo = list(read_jsonl(results / "scores.cache.jsonl"))
    assert len(memo) == 2 * 3 * 2  # two cases x three methods x two metrics kept
    monkeypatch.setattr(Scorer, "score", original)
    summary = score_results(results, SMOKE, progress=False)
    assert summary["methods"]["oracle"]["metrics"]["ds_global_tgt"]["n"] == 3


def test_outside_edits_in_any_image_format_and_misnamed_files_are_named(small_bench, results, tmp_path):
    mine = tmp_path / "mine" / "my-method"
    mine.mkdir(parents=True)
    Image.open(results / "oracle" / "case-0.png").save(mine / "case-0.jpg", quality=95)
    Image.open(results / "oracle" / "case-1.png").save(mine / "case-1.webp", lossless=True)
    shutil.copy(results / "oracle" / "case-2.png", mine / "Case_2.png")  # a near miss: not scored, but named
    (mine / "notes.png").write_bytes(b"")  # no case of that name at all
    summary = score_results(mine.parent, SMOKE, bench_spec=str(small_bench), progress=False)
    info = summary["methods"]["my-method"]
    assert info["unmatched_files"] == ["Case_2.png (did you mean case-2.png?)", "notes.png"]
    stats = info["metrics"]["ds_global_tgt"]
    assert (stats["n"], stats["status_counts"]["missing"]) == (2, 1)
    assert stats["mean"] == pytest.approx(1.0, abs=0.05)  # the oracle's images, through JPEG and WebP
    (mine / "case-0.png").write_bytes((results / "oracle" / "case-0.png").read_bytes())
    with pytest.raises(ResultsError, match="case 'case-0' has two edits, case-0.jpg and case-0.png"):
        score_results(mine.parent, SMOKE, bench_spec=str(small_bench), progress=False)


def test_a_folder_whose_images_name_no_case_is_an_error_not_zero_coverage(small_bench, results, tmp_path):
    mine = tmp_path / "mine" / "my-method"
    mine.mkdir(parents=True)
    for path in (results / "oracle").glob("*.png"):
        shutil.copy(path, mine / f"{path.stem.upper()}.png")
    with pytest.raises(ResultsError, match=r"none of its 3 image\(s\) is named <case_id>.<ext> after a case of "
                                           r"bench: CASE-0.png \(did you mean case-0.png\?\)"):
        score_results(mine.parent, SMOKE, bench_spec=str(small_bench), progress=False)


def test_a_second_scorer_of_the_same_folder_fails_at_once_or_waits(results):
    from tvbench.locks import folder_lock

    with folder_lock(results, "score"):
        with pytest.raises(ResultsError, match=r"another `tvbench score` is writing here \(pid \d+ on .*--wait"):
            score_results(results, SMOKE, progress=False)
    assert not (results / "scores.jsonl").exists()
    messages = []
    holder = threading.Thread(target=_hold_lock_briefly, args=(results, 0.5))
    holder.start()
    time.sleep(0.1)
    summary = score_results(results, SMOKE, progress=False, wait=True, on_wait=messages.append)
    holder.join()
    assert len(messages) == 1 and "waiting for another `tvbench score`" in messages[0]
    assert summary["methods"]["oracle"]["metrics"]["lpips_tgt"]["n"] == 3


def _hold_lock_briefly(folder, seconds):
    from tvbench.locks import folder_lock

    with folder_lock(folder, "score"):
        time.sleep(seconds)


def test_cli_names_unscored_edits_and_exits_1_when_one_cannot_be_decoded(small_bench, results, tmp_path):
    from typer.testing import CliRunner

    from tvbench.cli.app import app

    mine = tmp_path / "mine" / "my-method"
    mine.mkdir(parents=True)
    shutil.copy(results / "oracle" / "case-0.png", mine / "Case_0.png")
    shutil.copy(results / "oracle" / "case-1.png", mine / "case-1.png")
    (mine / "case-2.png").write_bytes(b"\x89PNG not really")
    # In process: scoring's exit code and messages are the command's own, not the entry point's (test_cli.py).
    result = CliRunner().invoke(app, ["score", str(mine.parent), "--bench", str(small_bench), "--smoke", "--metrics",
                                      "ds_global_tgt", "--resolution", "64", "--feature-cache", "off", "--device",
                                      "cpu", "-q"])
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert "warning: my-method: not named after a case of the benchmark, not scored: Case_0.png (did you mean " \
           "case-0.png?)" in lines
    assert any(line.startswith("error: my-method: case 'case-2': cannot decode case-2.png") for line in lines)
    assert result.stdout == ""  # the leaderboard is `tvbench report`'s job
