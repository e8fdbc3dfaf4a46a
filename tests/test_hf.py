"""Benchmarks as Hugging Face datasets: save_to_disk folders and hub-style data folders, offline."""

from __future__ import annotations

import pytest

pytest.importorskip("datasets")

from tvbench.cases import load_benchmark, to_hf_dataset, write_hf
from tvbench.errors import BenchmarkError, InvalidBenchmark


def test_save_to_disk_round_trip_keeps_the_hash(small_bench, tmp_path):
    bench = load_benchmark(small_bench)
    out = write_hf(bench, tmp_path / "saved")
    again = load_benchmark(out)
    assert again.hash == bench.hash and [c.id for c in again] == [c.id for c in bench]
    case = again["case-1"]
    assert case.points == bench["case-1"].points and case.dense_points == bench["case-1"].dense_points
    assert case.subtask == "real" and case.open_mask("mask_target").any()
    assert load_benchmark(f"hf:{out}").hash == bench.hash


def test_hub_style_data_folder_loads_through_load_dataset(small_bench, tmp_path):
    """A folder laid out like a hub dataset repo goes through datasets.load_dataset, the hub-id code path."""
    bench = load_benchmark(small_bench)
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    to_hf_dataset(bench).to_parquet(str(repo / "data" / "test-00000-of-00001.parquet"))
    loaded = load_benchmark(f"hf:{repo}")
    assert loaded.hash == bench.hash and loaded.spec == f"hf:{repo}"
    assert load_benchmark(f"hf:{repo}@test").hash == bench.hash
    with pytest.raises(BenchmarkError, match="cannot load the dataset"):
        load_benchmark(f"hf:{repo}@train")


def test_bad_rows_are_reported_per_case(small_bench, tmp_path):
    import datasets

    table = to_hf_dataset(load_benchmark(small_bench))
    table = table.map(lambda row: {"id": "../x" if row["id"] == "case-1" else row["id"],
                                   "meta": "{broken" if row["id"] == "case-2" else row["meta"]})
    table.save_to_disk(str(tmp_path / "bad"))
    with pytest.raises(InvalidBenchmark) as info:
        load_benchmark(tmp_path / "bad")
    fields = [(e.case_id, e.field) for e in info.value.errors]
    assert fields == [("../x", "id"), ("case-2", "meta")]
    without_source = datasets.Dataset.from_dict({"id": ["a"]})
    without_source.save_to_disk(str(tmp_path / "nosource"))
    with pytest.raises(BenchmarkError, match="lacks column"):
        load_benchmark(tmp_path / "nosource")


def _dataset_of_paths(folder, paths):
    """A saved dataset whose image column holds raw {bytes, path} records (no embedded bytes), as crafted files can."""
    import datasets

    record = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
    features = datasets.Features({"id": datasets.Value("string"), "source": record})
    rows = {"id": [f"c{k}" for k in range(len(paths))], "source": [{"bytes": None, "path": p} for p in paths]}
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(folder))
    return folder


def test_dataset_paths_outside_the_dataset_are_refused(tmp_path):
    from conftest import run_tvbench
    from PIL import Image

    secret = tmp_path / "secret.png"
    Image.new("RGB", (16, 16), (200, 10, 10)).save(secret)
    saved = _dataset_of_paths(tmp_path / "saved", [str(secret), "../secret.png"])
    result = run_tvbench("validate", str(saved))
    assert result.returncode == 1
    assert "case 'c0': source: '" + str(secret) + "' points outside the dataset folder" in result.stderr
    assert "case 'c1': source: '../secret.png' points outside" in result.stderr
    with pytest.raises(InvalidBenchmark, match="points outside"):  # what `data export` loads first
        load_benchmark(saved)


def test_dataset_paths_inside_the_dataset_folder_are_read(tmp_path):
    from PIL import Image

    saved = _dataset_of_paths(tmp_path / "saved", ["images/a.png"])
    (saved / "images").mkdir()
    Image.new("RGB", (16, 16), (10, 200, 10)).save(saved / "images" / "a.png")
    assert load_benchmark(saved)["c0"].open_image("source").getpixel((0, 0)) == (10, 200, 10)


def test_hub_dataset_images_are_embedded_bytes_or_files_in_the_hf_cache(tmp_path):
    from tvbench.cases.hf import _hub_cache_roots, _row_resolver
    from tvbench.errors import CaseError

    resolve = _row_resolver(_hub_cache_roots(), None, "the dataset's Hugging Face cache")
    assert resolve("c0", "source", {"bytes": b"png", "path": "/etc/passwd"}).data == b"png"  # bytes win
    inside = _hub_cache_roots()[0] / "org___name" / "a.png"
    assert resolve("c0", "source", {"bytes": None, "path": str(inside)}).path == inside.resolve()
    for path in ("/etc/passwd", str(tmp_path / "x.png"), "relative.png"):
        with pytest.raises(CaseError, match="c0.*source"):
            resolve("c0", "source", {"bytes": None, "path": path})
