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
