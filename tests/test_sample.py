"""The bundled ``sample`` benchmark: valid, deterministic, with exact ground truth and honest sub-task groups."""

from __future__ import annotations

import json
import math
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tvbench.cases.case import SUBTASKS
from tvbench.cases.sample import SAMPLE_VERSION, generate_sample, load_sample, sample_dir
from tvbench.cases.sample import store
from tvbench.cases.sample.transforms import Bend, Rotate, Scale, Translate, transform_from_meta

GT_TOLERANCE = 10.0
"""Mean absolute difference (0..255) between source samples around a handle and target samples at their
images under the case's transform. The exact renders stay below ~6.5 (minified textures blur a little);
shifting a target by 10 px in any axis direction pushes at least one point of every case above ~13."""

ROLES = ("source", "target", "mask_source", "mask_target")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The sample as ``load_sample`` materialises it, in a private cache (never the user's)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TVBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
        bench = load_sample()
        yield bench


@pytest.fixture(scope="module")
def folder(sample) -> Path:
    return sample.cases[0].source.path.parent.parent


@pytest.fixture(scope="module")
def records(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "cases.jsonl").read_text().splitlines()]


def _rgb(folder: Path, relative: str) -> np.ndarray:
    return np.asarray(Image.open(folder / relative).convert("RGB"), dtype=np.float64)


def _bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Colours at real coordinates; pixel (i, j) is centred at x = i, y = j."""
    h, w = image.shape[:2]
    x0 = np.clip(np.floor(x).astype(int), 0, w - 2)
    y0 = np.clip(np.floor(y).astype(int), 0, h - 2)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    return (image[y0, x0] * (1 - fx) * (1 - fy) + image[y0, x0 + 1] * fx * (1 - fy)
            + image[y0 + 1, x0] * (1 - fx) * fy + image[y0 + 1, x0 + 1] * fx * fy)


def _gt_errors(folder: Path, record: dict, shift: tuple[float, float] = (0.0, 0.0)) -> list[float]:
    """Per drag pair: mean |source(h + o) - target(T(h + o) + shift)| over the 3x3 offsets o."""
    source, target = _rgb(folder, record["source"]), _rgb(folder, record["target"])
    transform = transform_from_meta(record["meta"]["transform"])
    offsets = np.array([(a, b) for b in (-1.0, 0.0, 1.0) for a in (-1.0, 0.0, 1.0)])
    errors = []
    for xs, ys, _, _ in record["points"]:
        hx, hy = xs + offsets[:, 0], ys + offsets[:, 1]
        tx, ty = transform.forward(hx, hy)
        diff = _bilinear(source, hx, hy) - _bilinear(target, tx + shift[0], ty + shift[1])
        errors.append(float(np.abs(diff).mean()))
    return errors


def test_loads_and_validates(sample):
    assert sample.name == "sample"
    assert sample.spec == "sample"
    assert sample.validate() == []
    assert sample.hash and sample.hash.startswith("sha256:")
    assert 20 <= len(sample) <= 24
    assert {case.subtask for case in sample} == set(SUBTASKS)
    sizes = {case.open_image("source").size for case in sample}
    assert (256, 256) in sizes
    assert any(w != h for w, h in sizes), "downstream code must meet non-square images"
    assert sample.info["license"].startswith("CC0-1.0")
    assert sample.info["generator_version"] == SAMPLE_VERSION


def test_lives_in_the_versioned_cache_folder(sample, folder):
    assert folder.resolve() == sample_dir().resolve()
    assert folder.name == f"sample-v{SAMPLE_VERSION}"
    assert folder.parent.name == "benchmarks"
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".partial-")]


def test_record_format(folder, records):
    for record in records:
        case_id = record["id"]
        for role in ROLES:
            assert record[role] == f"images/{case_id}.{role}.png"
            with Image.open(folder / record[role]) as image:
                assert image.format == "PNG"
                assert image.mode == ("L" if role.startswith("mask") else "RGB")
                if role.startswith("mask"):
                    assert set(np.unique(np.asarray(image)).tolist()) == {0, 255}
        for name in ("instruction", "caption"):
            assert isinstance(record[name], str) and record[name].strip()
        assert ("group" in record) == (record["subtask"] != "real")
        assert record.get("group") is None or (isinstance(record["group"], str) and record["group"].strip())
        assert 1 <= len(record["points"]) <= 3
        assert 16 <= len(record["dense_points"]) <= 48
        assert record["meta"]["generator"] == f"tvbench-sample-v{SAMPLE_VERSION}"


def test_points_keep_off_the_border_and_on_the_object(folder, records):
    for record in records:
        width, height = Image.open(folder / record["source"]).size
        mask_s = np.asarray(Image.open(folder / record["mask_source"])) > 0
        mask_t = np.asarray(Image.open(folder / record["mask_target"])) > 0
        for xs, ys, xt, yt in record["points"]:
            for x, y in ((xs, ys), (xt, yt)):
                assert 8 <= x <= width - 9 and 8 <= y <= height - 9, record["id"]
            assert mask_s[round(ys), round(xs)] and mask_t[round(yt), round(xt)], record["id"]
        for xs, ys, xt, yt in record["dense_points"]:
            assert 0 <= min(xs, xt) and max(xs, xt) < width and 0 <= min(ys, yt) and max(ys, yt) < height
            assert mask_s[round(ys), round(xs)] and mask_t[round(yt), round(xt)], record["id"]


def test_real_subtask_covers_every_edit_kind(records):
    kinds = defaultdict(int)
    for record in records:
        if record["subtask"] != "real":
            continue
        transform = record["meta"]["transform"]
        kind = transform["kind"]
        if kind == "scale":
            kind = "enlarge" if transform["factor"] > 1 else "shrink"
        kinds[kind] += 1
    assert kinds["translate"] >= 2 and kinds["rotate"] >= 2 and kinds["bend"] >= 2
    assert kinds["enlarge"] >= 1 and kinds["shrink"] >= 1
    assert sum(kinds.values()) >= 8


def test_generation_is_deterministic(tmp_path, folder):
    again = generate_sample(tmp_path / "again")
    assert (again / "cases.jsonl").read_bytes() == (folder / "cases.jsonl").read_bytes()
    for record in (json.loads(line) for line in (folder / "cases.jsonl").read_text().splitlines()):
        for role in ROLES:
            with Image.open(folder / record[role]) as first, Image.open(again / record[role]) as second:
                assert first.mode == second.mode and first.size == second.size
                assert first.tobytes() == second.tobytes(), (record["id"], role)


def _groups(records: list[dict], subtask: str) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        if record["subtask"] == subtask:
            groups[record["group"]].append(record)
    return groups


def test_magnitude_groups_vary_only_the_magnitude(folder, records):
    groups = _groups(records, "magnitude")
    assert len(groups) >= 3
    for name, members in groups.items():
        assert len(members) >= 3, name
        assert len({m["instruction"] for m in members}) == 1, name
        sources = [_rgb(folder, m["source"]) for m in members]
        assert all(np.array_equal(sources[0], s) for s in sources[1:]), name
        assert len({m["meta"]["transform"]["kind"] for m in members}) == 1, name
        assert len({json.dumps(m["meta"]["transform"], sort_keys=True) for m in members}) == len(members), name
        assert len({json.dumps(m["points"]) for m in members}) == len(members), name
        targets = [_rgb(folder, m["target"]) for m in members]
        for i in range(len(targets)):
            for j in range(i + 1, len(targets)):
                assert not np.array_equal(targets[i], targets[j]), name
        # the drag length grows with the magnitude
        lengths = [math.dist(m["points"][0][:2], m["points"][0][2:]) for m in members]
        assert lengths == sorted(lengths) and len(set(lengths)) == len(lengths), name


def test_semantic_groups_share_the_drag_not_the_edit(folder, records):
    groups = _groups(records, "semantic")
    assert len(groups) >= 2
    for name, members in groups.items():
        assert len(members) >= 3, name
        assert all(m["points"] == members[0]["points"] for m in members), name
        assert len({m["instruction"] for m in members}) == len(members), name
        assert len({m["meta"]["transform"]["kind"] for m in members}) == len(members), name
        sources = [_rgb(folder, m["source"]) for m in members]
        assert all(np.array_equal(sources[0], s) for s in sources[1:]), name
        targets = [_rgb(folder, m["target"]) for m in members]
        for i in range(len(targets)):
            for j in range(i + 1, len(targets)):
                assert np.abs(targets[i] - targets[j]).mean() > 1.0, (name, i, j)


def test_ground_truth_is_exact_at_the_drag_points(folder, records):
    for record in records:
        errors = _gt_errors(folder, record)
        assert max(errors) <= GT_TOLERANCE, (record["id"], errors)


def test_ground_truth_check_would_catch_a_10px_shift(folder, records):
    """Keeps GT_TOLERANCE honest: a target misplaced by 10 px must fail the check above."""
    for record in records:
        for shift in ((10.0, 0.0), (-10.0, 0.0), (0.0, 10.0), (0.0, -10.0)):
            assert max(_gt_errors(folder, record, shift)) > GT_TOLERANCE, (record["id"], shift)


def test_points_follow_the_recorded_transform(records):
    for record in records:
        transform = transform_from_meta(record["meta"]["transform"])
        for name in ("points", "dense_points"):
            pairs = np.array(record[name], dtype=np.float64)
            tx, ty = transform.forward(pairs[:, 0], pairs[:, 1])
            assert np.abs(tx - pairs[:, 2]).max() <= 1e-6, (record["id"], name)
            assert np.abs(ty - pairs[:, 3]).max() <= 1e-6, (record["id"], name)


def test_every_target_differs_from_its_source_where_the_object_is(folder, records):
    for record in records:
        source, target = _rgb(folder, record["source"]), _rgb(folder, record["target"])
        region = (np.asarray(Image.open(folder / record["mask_source"])) > 0) | \
                 (np.asarray(Image.open(folder / record["mask_target"])) > 0)
        assert np.abs(source - target)[region].mean() > 5.0, record["id"]


def test_masks_are_the_object_support(folder, records):
    for record in records:
        source, target = _rgb(folder, record["source"]), _rgb(folder, record["target"])
        mask_s = np.asarray(Image.open(folder / record["mask_source"])) > 0
        mask_t = np.asarray(Image.open(folder / record["mask_target"])) > 0
        changed = np.abs(source - target).max(axis=2) > 0
        # every changed pixel is (at least partly) covered by the object before or after the edit; the binary
        # masks leave out anti-aliased pixels less than half covered (up to 2 px deep at sharp corners)
        grown = _dilate(_dilate(mask_s | mask_t))
        assert not (changed & ~grown).any(), record["id"]


def _dilate(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


# ---------------------------------------------------------------- transforms


@pytest.mark.parametrize("transform", [
    Translate(12.5, -3.0), Rotate(33.0, 100.0, 120.0), Scale(0.7, 80.0, 90.0),
    Bend(40.0, 12.0, base=(128.0, 230.0), handle=(128.0, 100.0)),
])
def test_inverse_undoes_forward(transform):
    ys, xs = np.mgrid[0:256:7, 0:256:7]
    x, y = xs.ravel().astype(float), ys.ravel().astype(float)
    bx, by = transform.inverse(*transform.forward(x, y))
    assert np.abs(bx - x).max() < 1e-9 and np.abs(by - y).max() < 1e-9
    assert transform_from_meta(json.loads(json.dumps(transform.to_meta()))) == transform


def test_bend_moves_the_handle_exactly_and_keeps_the_base():
    bend = Bend(-50.0, 8.0, base=(128.0, 222.0), handle=(128.0, 104.0))
    assert bend.forward(128.0, 104.0) == (78.0, 112.0)
    assert bend.forward(128.0, 222.0) == (128.0, 222.0)
    assert bend.forward(128.0, 240.0) == (128.0, 240.0)


def test_bend_refuses_a_drag_whose_inverse_might_not_converge():
    with pytest.raises(ValueError, match="converge"):
        Bend(90.0, 0.0, base=(0.0, 100.0), handle=(0.0, 0.0))


# ---------------------------------------------------------------- the cache


@pytest.fixture
def cheap_generation(monkeypatch, folder, tmp_path):
    """Make ``load_sample`` copy the already generated folder instead of rendering again."""
    calls = []

    def fake_generate(out: Path) -> Path:
        calls.append(out)
        shutil.copytree(folder, out, dirs_exist_ok=True)
        return out

    monkeypatch.setenv("TVBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(store, "generate_sample", fake_generate)
    return calls


def test_cache_is_built_once_and_reused(cheap_generation):
    first = load_sample()
    assert len(cheap_generation) == 1
    second = load_sample()
    assert len(cheap_generation) == 1
    assert [c.id for c in first] == [c.id for c in second]
    assert cheap_generation[0].name.startswith(".partial-") and not cheap_generation[0].exists()


def test_cache_without_cases_file_is_regenerated(cheap_generation):
    target = sample_dir()
    (target / "images").mkdir(parents=True)
    (target / "images" / "leftover.png").write_bytes(b"")
    bench = load_sample()
    assert len(cheap_generation) == 1
    assert (target / "cases.jsonl").is_file() and not (target / "images" / "leftover.png").exists()
    assert bench.validate() == []


def test_cache_race_uses_the_winner(monkeypatch, folder, tmp_path):
    """Another process finishes first: our rename fails, and we read its folder."""
    monkeypatch.setenv("TVBENCH_CACHE", str(tmp_path / "cache"))

    def slow_generate(out: Path) -> Path:
        shutil.copytree(folder, sample_dir())  # the other process wins meanwhile
        (sample_dir() / "winner").write_text("yes")
        shutil.copytree(folder, out, dirs_exist_ok=True)
        return out

    monkeypatch.setattr(store, "generate_sample", slow_generate)
    bench = load_sample()
    assert (sample_dir() / "winner").is_file()
    assert len(bench) == len(list((folder / "cases.jsonl").read_text().splitlines()))
    assert not [p for p in sample_dir().parent.iterdir() if p.name.startswith(".partial-")]


def test_stale_partial_copies_are_swept(tmp_path, monkeypatch):
    import os
    import time

    from tvbench.cases.sample import store
    from tvbench.io import remove_stale_partials

    monkeypatch.setenv("TVBENCH_CACHE", str(tmp_path))
    parent = store.sample_dir().parent
    old = parent / f".partial-{store.sample_dir().name}.killed"
    fresh = parent / f".partial-{store.sample_dir().name}.building"
    for folder in (old, fresh):
        (folder / "images").mkdir(parents=True)
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    remove_stale_partials(parent, store.sample_dir().name + ".")
    assert not old.exists() and fresh.exists()
