"""Case schema, validation and the folder format: every malformed input gets one line naming case and field."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import shifted_cases, write_bench

from tvbench.cases import load_benchmark, read_folder, write_folder
from tvbench.cases.case import check_case_id
from tvbench.errors import BenchmarkError, CaseError, InvalidBenchmark


def test_valid_folder_loads_with_hash(small_bench):
    bench = load_benchmark(small_bench)
    assert len(bench) == 3 and bench.hash.startswith("sha256:")
    case = bench["case-0"]
    assert case.points == ((30.0, 40.0, 36.0, 40.0),)
    assert case.open_mask("mask_source").sum() == 40 * 50
    assert bench.name == "bench"


def test_hash_depends_on_pixels_not_encoding(small_bench, tmp_path):
    bench = load_benchmark(small_bench)
    # Re-encode one PNG with another compression level: same pixels, same hash.
    from PIL import Image

    path = small_bench / "img/case-0.src.png"
    Image.open(path).save(path, compress_level=1)
    assert load_benchmark(small_bench).hash == bench.hash
    # Change one pixel: another hash.
    array = np.asarray(Image.open(path)).copy()
    array[0, 0, 0] ^= 1
    Image.fromarray(array).save(path)
    assert load_benchmark(small_bench).hash != bench.hash


def test_writer_round_trips(small_bench, tmp_path):
    bench = load_benchmark(small_bench)
    out = write_folder(bench, tmp_path / "copy")
    again = load_benchmark(out)
    assert again.hash == bench.hash
    assert json.loads((out / "benchmark.json").read_text())["hash"] == bench.hash
    with pytest.raises(Exception, match="already holds a benchmark"):
        write_folder(bench, out)


@pytest.mark.parametrize("case_id", ["../evil", "a/b", "", ".hidden", "..", "sp ace", "x" * 200, 7, None])
def test_unsafe_ids_rejected(case_id):
    with pytest.raises(CaseError, match="id"):
        check_case_id(case_id)


def _mutated(tmp_path, mutate):
    records, images = shifted_cases()
    mutate(records, images)
    return write_bench(tmp_path / "bad", records, images)


def _set(field, value, index=1):
    def mutate(records, images):
        records[index][field] = value
    return mutate


def _image(name, array):
    def mutate(records, images):
        images[name] = array
    return mutate


MALFORMED = {
    "traversal id": (_set("id", "../escape"), "id"),
    "slash id": (_set("id", "a/b"), "id"),
    "empty id": (_set("id", ""), "id"),
    "number id": (_set("id", 123), "id: must be a string, got 123"),
    "duplicate id": (_set("id", "case-0"), "duplicates"),
    "case-insensitive duplicate": (_set("id", "CASE-0"), "case-insensitive"),
    "unknown field": (_set("instrucion", "typo"), "instrucion"),
    "point outside": (_set("points", [[30, 40, 500, 40]]), "points[0]"),
    "negative point": (_set("points", [[-1, 40, 30, 40]]), "points[0]"),
    "dense point outside": (_set("dense_points", [[1, 1, 1, 900]]), "dense_points[0]"),
    "point arity": (_set("points", [[30, 40, 36]]), "points[0]"),
    "point not number": (_set("points", [["a", 40, 36, 40]]), "points[0]"),
    "points not list": (_set("points", "30,40"), "points"),
    "nan point": (_set("points", [[float("nan"), 40, 36, 40]]), "points[0]"),
    "instruction not string": (_set("instruction", 5), "instruction"),
    "empty instruction": (_set("instruction", "  "), "instruction"),
    "bad subtask": (_set("subtask", "hard"), "subtask"),
    "meta not object": (_set("meta", [1]), "meta"),
    "missing source": (_set("source", None), "source"),
    "missing image file": (_set("target", "img/nope.png"), "file not found"),
    "path escapes folder": (_set("target", "../../etc/passwd"), "outside the benchmark folder"),
    "absolute path": (_set("target", "/etc/passwd"), "absolute"),
    "mask wrong size": (_image("img/case-1.mask.png", np.zeros((10, 10), np.uint8) + 255), "mask_source"),
    "mask not binary": (_image("img/case-1.mask.png", np.tile(np.arange(96, dtype=np.uint8), (80, 1))), "not binary"),
    "empty mask": (_image("img/case-1.mask.png", np.zeros((80, 96), np.uint8)), "empty"),
    "target wrong size": (_image("img/case-1.tgt.png", np.zeros((40, 40, 3), np.uint8)), "target"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_case_is_one_line_naming_case_and_field(tmp_path, name):
    mutate, expected = MALFORMED[name]
    root = _mutated(tmp_path, mutate)
    with pytest.raises((InvalidBenchmark, BenchmarkError)) as info:
        load_benchmark(root)
    message = str(info.value)
    assert "\n" not in message
    assert expected in message
    if isinstance(info.value, InvalidBenchmark):
        assert all("case" in str(e) for e in info.value.errors)


def test_symlink_loop_is_a_case_error(tmp_path):
    root = _mutated(tmp_path, _set("target", "img/loop.png"))
    (root / "img/loop.png").symlink_to("loop.png")
    with pytest.raises(InvalidBenchmark, match=r"line 2: case 'case-1': target: cannot resolve"):
        load_benchmark(root)


def test_corrupt_and_truncated_images(tmp_path):
    root = _mutated(tmp_path, lambda r, i: None)
    (root / "img/case-1.tgt.png").write_bytes(b"not an image at all")
    data = (root / "img/case-2.src.png").read_bytes()
    (root / "img/case-2.src.png").write_bytes(data[: len(data) // 2])
    bench = read_folder(root)
    problems = bench.validate()
    assert [(p.case_id, p.field) for p in problems] == [("case-1", "target"), ("case-2", "source")]
    assert "cannot decode" in str(problems[0])


@pytest.mark.parametrize("content, expected", [
    ("{not json}\n", "line 1"),
    ("[1, 2]\n", "JSON object"),
    ("", "no cases"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
])
def test_broken_cases_file(tmp_path, content, expected):
    root = tmp_path / "b"
    root.mkdir()
    path = root / "cases.jsonl"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises((InvalidBenchmark, BenchmarkError)) as info:
        load_benchmark(root)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_byte_order_mark_is_tolerated(small_bench):
    path = small_bench / "cases.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert len(load_benchmark(small_bench)) == 3


def test_not_a_benchmark(tmp_path):
    with pytest.raises(BenchmarkError, match="no benchmark at"):
        load_benchmark(tmp_path / "missing")
    with pytest.raises(BenchmarkError, match="not a benchmark"):
        load_benchmark(tmp_path)


def test_cli_validate_reports_each_problem_on_one_line(tmp_path):
    root = _mutated(tmp_path, lambda r, i: (r[0].__setitem__("points", [[999, 1, 1, 1]]),
                                            r[2].__setitem__("subtask", "nope")))
    result = subprocess.run([sys.executable, "-m", "tvbench", "validate", str(root)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert any("case 'case-0': points[0]" in line for line in lines)
    assert any("subtask" in line for line in lines)
    assert lines[-1] == "2 problem(s) found"


def test_cli_validate_ok(small_bench):
    result = subprocess.run([sys.executable, "-m", "tvbench", "validate", str(small_bench)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert "3 cases OK" in result.stdout
