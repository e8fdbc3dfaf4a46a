"""Every image metric through `score_results`: known answers, DragBench-style cases, the on-disk feature cache."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import DRAGBENCH_DEV as DEV
from PIL import Image

from tvbench.cases import load_benchmark
from tvbench.io import read_jsonl
from tvbench.methods import create_method
from tvbench.metrics import default_metrics
from tvbench.runner import run_method
from tvbench.scoring import ScoringConfig, score_results



def smoke(**overrides) -> ScoringConfig:
    settings = dict(smoke=True, resolution=96, match_resolution=128, device="cpu", feature_cache=None)
    return ScoringConfig(**{**settings, **overrides})


def rows_by(results: Path) -> dict[tuple[str, str, str], dict]:
    return {(r["method"], r["case"], r["metric"]): r for r in read_jsonl(results / "scores.jsonl")}


@pytest.fixture
def results(small_bench, tmp_path):
    bench = load_benchmark(small_bench)
    for name in ("identity", "oracle"):
        run_method(create_method(name), bench, tmp_path / "results", progress=False)
    return tmp_path / "results"


def test_default_metrics_cover_the_paper_and_dragbench():
    assert set(default_metrics()) == {"ds_global_tgt", "ds_local_tgt", "ds_local_src", "lpips_tgt", "md_s", "md_d",
                                      "dragbench_md", "dragbench_if", "magnitude_rho", "magnitude_order",
                                      "semantic_acc"}


def test_known_answers_of_oracle_and_identity(results, small_bench):
    summary = score_results(results, smoke(), progress=False)
    rows = rows_by(results)
    subtask_metrics = {"magnitude_rho", "magnitude_order", "semantic_acc"}  # these cases are not in such groups
    assert all(r["status"] == ("not_applicable" if r["metric"] in subtask_metrics else "ok") for r in rows.values())
    bench = load_benchmark(small_bench)
    for case in bench.cases:
        oracle = {m: rows["oracle", case.id, m]["value"] for m in ("ds_global_tgt", "ds_local_tgt", "lpips_tgt")}
        assert oracle["ds_global_tgt"] == 1.0 and oracle["lpips_tgt"] == 0.0
        assert oracle["ds_local_tgt"] == pytest.approx(1.0, abs=1e-12)
        width, height = case.source.open().size
        for metric, pairs in (("md_s", case.points), ("md_d", case.dense_points)):
            expected = np.mean([math.hypot((tx - hx) / width, (ty - hy) / height) for hx, hy, tx, ty in pairs])
            assert rows["identity", case.id, metric]["value"] == pytest.approx(expected, abs=1e-12)
            assert rows["identity", case.id, metric]["points"] == len(pairs)
        assert rows["identity", case.id, "ds_local_src"]["value"] == pytest.approx(1.0, abs=1e-12)
        assert rows["identity", case.id, "dragbench_if"]["value"] == 1.0
    md = summary["methods"]["identity"]["metrics"]["md_d"]
    per_point = [math.hypot((tx - hx) / 96, (ty - hy) / 80) for c in bench.cases for hx, hy, tx, ty in c.dense_points]
    assert md["pooled_mean"] == pytest.approx(np.mean(per_point)) and md["points"] == len(per_point)
    assert summary["metrics"]["dragbench_md"]["headline"] == "pooled_mean"


def test_if_is_one_minus_lpips_at_224_as_dragdiffusion_computes_it(results, small_bench):
    import lpips

    from tvbench.features.lpips import RANDOM_TRUNK_SEED
    from tvbench.features.random_init import deterministic_init_

    score_results(results, smoke(metrics=["dragbench_if"]), progress=False)
    model = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
    deterministic_init_(model.net, RANDOM_TRUNK_SEED)
    case = load_benchmark(small_bench).cases[1]

    def tensor(image):
        array = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1)
        return torch.nn.functional.interpolate(array.permute(2, 0, 1)[None], (224, 224), mode="bilinear")

    expected = 1 - float(model(tensor(case.source.open()), tensor(Image.open(results / "oracle" / f"{case.id}.png"))))
    assert rows_by(results)["oracle", case.id, "dragbench_if"]["value"] == pytest.approx(expected, abs=1e-6)


def test_a_case_without_masks_gets_a_derived_mask_marked_in_the_row(tmp_path):
    from conftest import shifted_cases, write_bench

    records, images = shifted_cases(n=2)
    for field in ("mask_source", "mask_target"):
        del records[0][field]
    bench = load_benchmark(write_bench(tmp_path / "b", records, images))
    run_method(create_method("identity"), bench, tmp_path / "out", progress=False)
    summary = score_results(tmp_path / "out", smoke(metrics=["ds_local_tgt", "ds_local_src"]), progress=False)
    rows = rows_by(tmp_path / "out")
    derived = rows["identity", "case-0", "ds_local_tgt"]
    assert derived["status"] == "ok" and derived["mask"] == "derived" and "radius 9.6 px" in derived["detail"]
    assert "mask" not in rows["identity", "case-1", "ds_local_tgt"]
    assert summary["methods"]["identity"]["metrics"]["ds_local_src"]["derived_masks"] == 1


@pytest.mark.skipif(not DEV.is_dir(), reason="needs shared/data/dragbench-dev")
def test_imported_dragbench_cases_score_with_the_dragbench_protocol(tmp_path):
    from tvbench.cases.importers import import_benchmark

    src = tmp_path / "src" / "animals"
    for case in sorted((DEV / "animals").iterdir())[:2]:
        shutil.copytree(case, src / case.name)
    bench = import_benchmark("dragbench", tmp_path / "src", tmp_path / "bench")
    run_method(create_method("identity"), bench, tmp_path / "out", progress=False)
    summary = score_results(tmp_path / "out", smoke(), progress=False)
    stats = summary["methods"]["identity"]["metrics"]
    for name in ("ds_global_tgt", "ds_local_tgt", "lpips_tgt", "md_d"):
        assert stats[name]["applicable"] == 0 and stats[name]["status_counts"]["not_applicable"] == 2
    for name in ("md_s", "dragbench_md", "dragbench_if", "ds_local_src"):
        assert stats[name]["coverage"] == 1.0
    lengths = [math.hypot(tx - hx, ty - hy) for case in bench.cases for hx, hy, tx, ty in case.points]
    assert stats["dragbench_md"]["pooled_mean"] == pytest.approx(np.mean(lengths))


# --- the on-disk feature cache ----------------------------------------------------------------------------------


def test_the_feature_cache_makes_a_rescore_free_and_a_new_method_cost_only_its_edits(results, tmp_path):
    cache = tmp_path / "features"
    first = score_results(results, smoke(feature_cache=str(cache)), progress=False)["work"]
    # per case: source, target (= oracle's edit) and identity's edit (= source) -> 2 images, at 2 resolutions
    assert first["dino_forwards"] == 3 * 2 * 2 and first["feature_cache_hits"] == 0
    again = score_results(results, smoke(feature_cache=str(cache), rescore=True), progress=False)["work"]
    assert again["dino_forwards"] == 0 and again["rows_reused"] == 0
    flipped = results / "flipped"
    flipped.mkdir()
    for path in (results / "identity").glob("*.png"):
        Image.open(path).transpose(Image.FLIP_LEFT_RIGHT).save(flipped / path.name)
    added = score_results(results, smoke(feature_cache=str(cache)), progress=False)["work"]
    assert added["dino_forwards"] == 3 * 2  # the new method's three edits, at two resolutions; nothing else
    assert added["rows_computed"] == 3 * len(default_metrics())


def test_a_corrupt_cache_entry_is_recomputed(results, tmp_path):
    cache = tmp_path / "features"
    score_results(results, smoke(feature_cache=str(cache)), progress=False)
    before = rows_by(results)
    entries = sorted(cache.rglob("*.safetensors"))
    entries[0].write_bytes(b"not a tensor file")
    work = score_results(results, smoke(feature_cache=str(cache), rescore=True), progress=False)["work"]
    assert work["dino_forwards"] == 1
    assert {k: r["value"] for k, r in rows_by(results).items()} == {k: r["value"] for k, r in before.items()}


def test_two_scorers_sharing_a_cache_at_once(results, tmp_path):
    cache = tmp_path / "features"
    other = tmp_path / "other"
    shutil.copytree(results, other)
    env = {**os.environ, "TVBENCH_CACHE": os.environ["TVBENCH_CACHE"]}
    command = [sys.executable, "-m", "tvbench", "score", "--smoke", "-q", "--resolution", "96",
               "--match-resolution", "128", "--device", "cpu", "--feature-cache", str(cache)]
    procs = [subprocess.Popen(command + [str(folder)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for folder in (results, other)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    values = [{k: r["value"] for k, r in rows_by(folder).items()} for folder in (results, other)]
    assert values[0] == values[1]
    assert not list(cache.rglob(".partial-*"))
    summary = json.loads((results / "summary.json").read_text())
    assert summary["work"]["feature_cache"].startswith(str(cache))


def test_the_store_keeps_a_bounded_number_of_features_in_memory(tmp_path):
    from conftest import textured

    from tvbench.features import DinoBackbone, FeatureStore
    from tvbench.features.cache import FeatureCache

    backbone = DinoBackbone.from_pretrained("random-tiny", device="cpu")
    disk = FeatureCache(tmp_path / "features", {"network": backbone.describe()})
    store = FeatureStore(backbone, 32, max_items=4, disk=disk)
    images = [Image.fromarray(textured(32, 32, seed=k)) for k in range(10)]
    first = [store.get(image).cls.clone() for image in images]
    assert len(store) == 4 and store.forwards == 10 and disk.writes == 10
    again = [store.get(image).cls for image in images]  # evicted entries come back from disk, not the network
    assert store.forwards == 10 and disk.hits == 10 and all(torch.equal(a, b) for a, b in zip(first, again))
