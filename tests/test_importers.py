"""Importers: DragBench (real dev cases and synthesised ones), Drag100 fixtures, untrusted pickles, hf round trip."""

from __future__ import annotations

import builtins
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import DRAGBENCH_DEV as DEV  # the 50 real cases, 5 a category
from conftest import textured
from tvbench.cases import load_benchmark, read_folder, write_hf
from tvbench.cases.importers import IMPORTERS, ImportFailed, import_benchmark, read_source
from tvbench.cases.importers.common import BORDER_TOLERANCE
from tvbench.cases.importers.safe_pickle import UnsafePickleError, load_untrusted, load_untrusted_file
from tvbench.cli import main
from tvbench.errors import BenchmarkError, TvbenchError, UnknownNameError

needs_dev = pytest.mark.skipif(not DEV.is_dir(), reason="the DragBench dev subset is not on this machine")


# --- fixture generators -------------------------------------------------------------------------------------------

def make_dragbench_case(root: Path, category: str, name: str, *, width: int = 64, height: int = 48,
                        points: list | None = None, meta: object = None, seed: int = 0) -> Path:
    """A DragBench-style case folder: ``original_image.png`` and a ``meta_data.pkl`` pickled by this numpy."""
    case_dir = root / category / name
    case_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(textured(width, height, seed)).save(case_dir / "original_image.png")
    if meta is None:
        mask = np.zeros((height, width), np.uint8)
        mask[height // 4: 3 * height // 4, width // 4: 3 * width // 4] = 1
        meta = {"prompt": "a photo of a textured thing", "points": points or [[10, 10], [20, 12]], "mask": mask}
    (case_dir / "meta_data.pkl").write_bytes(meta if isinstance(meta, bytes) else pickle.dumps(meta, protocol=4))
    return case_dir


def make_drag100(root: Path) -> Path:
    """Three Drag100-style cases (JPEG source, 0/255 L mask, points.json), one of them one folder deeper."""
    specs = [("cat/001", 80, 60, [[10, 20], [30, 20]]),
             ("002", 64, 96, [[5, 5], [6, 40], [63, 95], [40, 90]]),  # two pairs, a target on the far corner
             ("003", 70, 50, [[0, 0], [70, 49]])]  # x == W: one pixel outside, clamped onto the border
    for k, (relative, width, height, points) in enumerate(specs):
        case_dir = root / relative
        case_dir.mkdir(parents=True)
        Image.fromarray(textured(width, height, seed=10 + k)).save(case_dir / "original.jpg", quality=90)
        mask = np.zeros((height, width), np.uint8)
        mask[: height // 2, : width // 2] = 255
        Image.fromarray(mask, mode="L").save(case_dir / "mask.png")
        (case_dir / "points.json").write_text(json.dumps({"points": points}))
    return root


class _Evil:
    """Pickles to ``callable(*args)``: what a malicious meta_data.pkl would do on plain ``pickle.load``."""

    def __init__(self, call, *args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


# --- the 50 real dev cases ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dev_import(tmp_path_factory):
    if not DEV.is_dir():
        pytest.skip("the DragBench dev subset is not on this machine")
    out = tmp_path_factory.mktemp("dragbench") / "bench"
    import_benchmark("dragbench", DEV, out)
    return out


@needs_dev
def test_all_dev_cases_import_and_validate(dev_import):
    bench = load_benchmark(dev_import, validate=True)
    pickles = sorted(DEV.glob("*/*/meta_data.pkl"))
    assert len(bench) == len(pickles) == 50
    for path in pickles:
        raw = load_untrusted_file(path)
        case = bench[f"{path.parent.parent.name}__{path.parent.name}"]
        assert len(case.points) * 2 == len(raw["points"])
        assert [list(p) for p in case.points] == [[*raw["points"][k], *raw["points"][k + 1]]
                                                  for k in range(0, len(raw["points"]), 2)]
        assert case.caption == raw["prompt"] and case.instruction is None and case.target is None
        assert case.meta["path"] == f"{path.parent.parent.name}/{path.parent.name}"
    case = bench["animals__JH_2023-09-14-1821-23"]
    raw = load_untrusted_file(DEV / "animals" / "JH_2023-09-14-1821-23" / "meta_data.pkl")
    assert np.array_equal(np.asarray(Image.open(dev_import / "images" / f"{case.id}.mask_source.png")),
                          raw["mask"] * 255)
    assert (dev_import / "images" / f"{case.id}.source.png").read_bytes() == \
        (DEV / "animals" / "JH_2023-09-14-1821-23" / "original_image.png").read_bytes()
    assert json.loads((dev_import / "benchmark.json").read_text())["hash"] == bench.hash


@needs_dev
def test_one_category_imports_with_the_same_ids_and_hash_per_case(dev_import, tmp_path):
    part = read_source("dragbench", DEV / "animals")
    assert len(part) == 5 and all(c.id.startswith("animals__") for c in part)
    whole = read_folder(dev_import)
    assert all(case.text_record() == whole[case.id].text_record() for case in part)


@needs_dev
def test_hf_round_trip_of_imported_dragbench_keeps_the_hash(dev_import, tmp_path):
    pytest.importorskip("datasets")
    bench = load_benchmark(dev_import)
    hf_dir = write_hf(bench, tmp_path / "hf")
    again = import_benchmark("hf", hf_dir, tmp_path / "back")
    assert again.hash == bench.hash
    assert load_benchmark(tmp_path / "back").hash == bench.hash


# --- synthesised DragBench cases ----------------------------------------------------------------------------------

def test_six_pairs_odd_height_and_border_points_import(tmp_path):
    width, height = 512, 771
    points = [[10, 10], [40, 30], [100, 700], [120, 770], [511, 0], [500, 5],
              [512, 771], [480, 760], [-1, 300], [20, 300], [256, 385], [300, 400]]
    make_dragbench_case(tmp_path / "src", "human_full_body", "case 1", width=width, height=height, points=points)
    bench = import_benchmark("dragbench", tmp_path / "src", tmp_path / "out")
    case = load_benchmark(tmp_path / "out")["human_full_body__case-1"]
    assert len(case.points) == 6 and bench.hash
    assert case.points[3] == (511.0, 770.0, 480.0, 760.0) and case.points[4][0] == 0.0
    clamped = case.meta["clamped_points"]
    assert clamped == [{"index": 6, "from": [512, 771], "to": [511, 770]}, {"index": 8, "from": [-1, 300],
                                                                             "to": [0, 300]}]


def test_points_beyond_the_tolerance_are_refused_naming_the_case(tmp_path):
    far = 511 + BORDER_TOLERANCE + 1
    make_dragbench_case(tmp_path / "src", "animals", "far", width=512, height=64, points=[[far, 3], [3, 3]])
    with pytest.raises(ImportFailed, match=r"case 'animals__far': points\[0\]: .* outside the 512x64 image"):
        import_benchmark("dragbench", tmp_path / "src", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _mask(height=48, width=64, value=1):
    mask = np.zeros((height, width), np.uint8)
    mask[5:20, 5:20] = value
    return mask


@pytest.mark.parametrize("meta, problem", [
    (["not", "a", "dict"], "meta_data.pkl: must hold a dict, got list"),
    ({"prompt": "x", "points": [[1, 1], [2, 2]]}, "lacks key(s) mask"),
    ({"prompt": 3, "points": [[1, 1], [2, 2]], "mask": _mask()}, "prompt: must be a string, got int"),
    ({"prompt": "x", "points": [[1, 1], [2, 2], [3, 3]], "mask": _mask()}, "has 3 points; expected an even number"),
    ({"prompt": "x", "points": [], "mask": _mask()}, "points: is empty"),
    ({"prompt": "x", "points": [[1, 1, 1], [2, 2]], "mask": _mask()}, "points[0]: must be [x, y]"),
    ({"prompt": "x", "points": [["a", 1], [2, 2]], "mask": _mask()}, "coordinates must be numbers"),
    ({"prompt": "x", "points": [[1, 1], [2, 2]], "mask": _mask(40)}, "mask: is 64x40 but the image is 64x48"),
    ({"prompt": "x", "points": [[1, 1], [2, 2]], "mask": np.concatenate([_mask()[:, :32], _mask(value=2)[:, :32]], 1)},
     "only 0 and 1 (or 0 and one"),
    ({"prompt": "x", "points": [[1, 1], [2, 2]], "mask": np.full((48, 64), -1, np.int8)}, "got -1"),
    ({"prompt": "x", "points": [[1, 1], [2, 2]], "mask": _mask()[..., None]}, "must be 2-D"),
    ({"prompt": "x", "points": [[1, 1], [2, 2]], "mask": [[0, 1]]}, "must be a 2-D array, got list"),
])
def test_malformed_dicts_give_one_line_case_errors(tmp_path, meta, problem):
    make_dragbench_case(tmp_path / "src", "cat", "bad", meta=meta)
    make_dragbench_case(tmp_path / "src", "cat", "good")
    with pytest.raises(ImportFailed) as info:
        import_benchmark("dragbench", tmp_path / "src", tmp_path / "out")
    assert problem in str(info.value) and len(info.value.errors) == 1 and info.value.errors[0].case_id == "cat__bad"
    assert "\n" not in str(info.value)


def test_empty_mask_imports_without_mask_source(tmp_path):
    meta = {"prompt": " ", "points": [[1, 1], [2, 2]], "mask": np.zeros((48, 64), np.uint8)}
    make_dragbench_case(tmp_path / "src", "cat", "empty", meta=meta)
    bench = import_benchmark("dragbench", tmp_path / "src", tmp_path / "out")
    case = bench["cat__empty"]
    assert case.mask_source is None and case.caption is None and "empty" in case.meta["mask"]


# --- untrusted pickles --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda f: _Evil(os.system, f"touch {f}"),
    lambda f: _Evil(builtins.eval, f"open({str(f)!r}, 'w').write('pwned')"),
    lambda f: _Evil(builtins.open, str(f), "w"),
    lambda f: _Evil(builtins.exec, f"open({str(f)!r}, 'w')"),
])
def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path, make):
    flag = tmp_path / "pwned"
    meta = {"prompt": "x", "points": [[1, 1], [2, 2]], "mask": _mask(), "extra": make(flag)}
    make_dragbench_case(tmp_path / "src", "animals", "evil", meta=meta)
    with pytest.raises(ImportFailed, match=r"case 'animals__evil': meta_data.pkl: refused, nothing in it was run: "
                                           r"refused global (posix|nt|os|builtins|io)\.(system|eval|open|exec)"):
        import_benchmark("dragbench", tmp_path / "src", tmp_path / "out")
    assert not flag.exists() and not (tmp_path / "out").exists()


def test_the_malicious_fixture_is_real(tmp_path):
    """Plain pickle.load would have created the file: the refusal above is what prevents it."""
    flag = tmp_path / "created-by-plain-pickle"
    pickle.loads(pickle.dumps(_Evil(builtins.open, str(flag), "w"))).close()
    assert flag.exists()


def test_allowed_globals_cannot_be_misused():
    assert load_untrusted(pickle.dumps(np.arange(6, dtype=np.uint8).reshape(2, 3))).tolist() == [[0, 1, 2], [3, 4, 5]]
    assert load_untrusted(pickle.dumps(np.int64(7))) == 7
    with pytest.raises(UnsafePickleError, match="dtype"):
        load_untrusted(pickle.dumps(np.array([os.getcwd], dtype=object)))
    with pytest.raises(pickle.UnpicklingError):  # calling the ndarray stand-in directly
        load_untrusted(b"\x80\x04cnumpy\nndarray\nK\x03\x85R.")
    with pytest.raises(UnsafePickleError, match="ndarray reconstruction"):
        load_untrusted(b"\x80\x04cnumpy.core.multiarray\n_reconstruct\ncnumpy\ndtype\nK\x00\x85C\x01b\x87R.")
    for state in (b"}X\x01\x00\x00\x00aK\x01s", b"N}X\x01\x00\x00\x00aK\x01s\x86"):  # BUILD: dict, slot state
        with pytest.raises(UnsafePickleError, match="refused setting"):
            load_untrusted(b"\x80\x04cnumpy\ndtype\n" + state + b"b.")


@needs_dev
def test_truncated_or_garbage_pickles_give_one_line_errors(tmp_path):
    data = (DEV / "animals" / "JH_2023-09-14-1821-23" / "meta_data.pkl").read_bytes()
    for name, blob in (("truncated", data[: len(data) // 2]), ("garbage", b"\x00not a pickle at all")):
        make_dragbench_case(tmp_path / "src", "animals", name, meta=blob)
    with pytest.raises(ImportFailed) as info:
        import_benchmark("dragbench", tmp_path / "src", tmp_path / "out")
    problems = sorted(str(e) for e in info.value.errors)
    assert len(problems) == 2 and all("meta_data.pkl: cannot unpickle" in p and "\n" not in p for p in problems)
    assert "animals__garbage" in problems[0] and "animals__truncated" in problems[1]


# --- Drag100 ------------------------------------------------------------------------------------------------------

def test_drag100_fixtures_import(tmp_path):
    bench = import_benchmark("drag100", make_drag100(tmp_path / "drag100"), tmp_path / "out")
    loaded = load_benchmark(tmp_path / "out")
    assert loaded.hash == bench.hash and [c.id for c in loaded] == ["002", "003", "cat__001"]
    assert loaded["002"].points == ((5.0, 5.0, 6.0, 40.0), (63.0, 95.0, 40.0, 90.0))
    assert loaded["003"].meta["clamped_points"] == [{"index": 1, "from": [70, 49], "to": [69, 49]}]
    for case in loaded:
        assert case.caption is None and case.instruction is None and case.target is None
        assert set(np.unique(np.asarray(case.mask_source.open("L"))).tolist()) == {0, 255}
    assert (tmp_path / "out" / "images" / "cat__001.source.jpg").read_bytes() == \
        (tmp_path / "drag100" / "cat" / "001" / "original.jpg").read_bytes()
    assert [c.id for c in read_source("drag100", tmp_path / "drag100" / "002")] == ["002"]


def test_drag100_bad_cases(tmp_path):
    root = make_drag100(tmp_path / "drag100")
    (root / "002" / "points.json").write_text('{"pts": []}')
    (root / "003" / "mask.png").unlink()
    Image.fromarray((np.arange(80 * 60) % 7).astype(np.uint8).reshape(60, 80)).save(root / "cat" / "001" / "mask.png")
    with pytest.raises(ImportFailed) as info:
        import_benchmark("drag100", root, tmp_path / "out")
    problems = sorted(str(e) for e in info.value.errors)
    assert len(problems) == 2
    assert "'002': points.json: must be a JSON object" in problems[0]
    assert "'cat__001': mask.png: is not binary" in problems[1]
    bench = read_source("drag100", root / "003")
    assert bench["003"].mask_source is None and "no mask.png" in bench["003"].meta["mask"]


# --- registry and CLI ---------------------------------------------------------------------------------------------

def test_unknown_format_suggests():
    assert IMPORTERS.names() == ["drag100", "dragbench", "hf"]
    with pytest.raises(UnknownNameError, match="did you mean 'dragbench'"):
        import_benchmark("dragbnch", "x", "y")


def _cli(args, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


def test_cli_lists_imports_and_reports_one_line_errors(tmp_path, capsys):
    code, out, _ = _cli(["data", "import"], capsys)
    assert code == 0 and "dragbench:" in out and "drag100:" in out and "hf:" in out
    code, _, err = _cli(["data", "import", "dragbench", str(tmp_path / "missing"), str(tmp_path / "out")], capsys)
    assert code == 2 and err.count("\n") == 1 and "no such folder" in err and "Traceback" not in err
    code, _, err = _cli(["data", "import", "drag10", "a", "b"], capsys)
    assert code == 2 and err.count("\n") == 1 and "did you mean 'drag100'" in err
    make_dragbench_case(tmp_path / "src", "animals", "evil", meta={"x": _Evil(os.system, "true")})
    code, _, err = _cli(["data", "import", "dragbench", str(tmp_path / "src"), str(tmp_path / "out"), "-q"], capsys)
    assert code == 2 and err.count("\n") == 1 and "'animals__evil': meta_data.pkl: refused" in err
    make_dragbench_case(tmp_path / "src", "animals", "odd", meta={"prompt": "x", "points": [[1, 1]], "mask": _mask()})
    code, _, err = _cli(["data", "import", "dragbench", str(tmp_path / "src"), str(tmp_path / "out"), "-q"], capsys)
    lines = err.splitlines()
    assert code == 2 and len(lines) == 3 and "2 case(s) cannot be imported" in lines[-1] and "Traceback" not in err


def test_cli_import_then_overwrite(tmp_path, capsys):
    root = make_drag100(tmp_path / "drag100")
    args = ["data", "import", "drag100", str(root), str(tmp_path / "out"), "-q"]
    code, _, err = _cli(args, capsys)
    assert code == 0 and "imported 3 cases" in err
    first = (tmp_path / "out" / "cases.jsonl").read_bytes()
    code, _, err = _cli(args, capsys)
    assert code == 2 and "pass --overwrite" in err
    code, _, err = _cli([*args, "--overwrite"], capsys)
    assert code == 0 and (tmp_path / "out" / "cases.jsonl").read_bytes() == first


def test_missing_source_is_a_benchmark_error(tmp_path):
    with pytest.raises(BenchmarkError, match="no such folder"):
        read_source("drag100", tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchmarkError, match="no points.json found"):
        read_source("drag100", tmp_path / "empty")
    assert issubclass(ImportFailed, TvbenchError)


def test_folder_above_drag_bench_data_and_macos_leftovers(tmp_path):
    make_dragbench_case(tmp_path / "zip" / "drag_bench_data", "animals", "a")
    make_dragbench_case(tmp_path / "zip" / "__MACOSX" / "drag_bench_data", "animals", "a", meta=b"\x00junk")
    bench = read_source("dragbench", tmp_path / "zip")
    assert [c.id for c in bench] == ["animals__a"] and not bench.validate()


def test_drag100_antialiased_masks_are_binarised_and_noted(tmp_path):
    root = make_drag100(tmp_path / "drag100")
    mask = np.zeros((60, 80), np.uint8)
    mask[10:40, 10:50] = 255
    mask[10, 10:50] = 128  # an antialiased edge: 40 of 4800 pixels
    Image.fromarray(mask).save(root / "cat" / "001" / "mask.png")
    bench = read_source("drag100", root)
    case = bench["cat__001"]
    assert "binarised at 127.5: 40 pixels" in case.meta["mask"]
    assert np.asarray(case.mask_source.open("L"))[10, 20] == 255 and not bench.validate()
