"""The files written for each case, in the layout an external script reads.

Each layout goes into ``<work_dir>/input/`` (``{input_root}``), which holds the case's folder and nothing else,
so scripts that walk a whole dataset see exactly one case.

- ``tvbench``: ``<case_id>/source.png``, ``mask.png`` (0/255, only when the spec declares ``mask``) and
  ``case.json`` (id, size, texts, exact float points ``[[x_h, y_h, x_t, y_t], ...]``, seed, output path).
- ``dragbench``: ``<category>/<case_id>/original_image.png`` and ``meta_data.pkl``, a dict with ``prompt``
  (str), ``points`` (``[[x, y], ...]`` Python ints, handle and target alternating) and ``mask`` (``uint8``
  ``(H, W)``, 1 = may change), as DragDiffusion's labelling tool writes them and its
  ``drag_bench_evaluation`` scripts read them (github.com/Yujun-Shi/DragDiffusion, ``labeling_tool.py``
  ``save_all``, ``run_drag_diffusion.py``). All ten DragBench category folders exist, since those scripts
  list each of them; the case sits in its own category (``meta["category"]``) or in ``other_objects``.
- ``gooddrag``: ``<case_id>/original.jpg``, ``mask.png`` (mode L, 0/255), ``points.json`` (``{"points":
  [[x, y], ...]}``) and ``image_with_points.jpg``, as GoodDrag's ``bench_gooddrag.py`` ``load_data`` reads
  them (github.com/zewei-Zhang/GoodDrag, and its ``dataset/`` examples).

DragBench and GoodDrag points are integer clicks, so float points are rounded to the nearest pixel there (the
case's facts say so); a missing mask is written as all zeros, which is what DragBench files hold when nobody
drew one (tvbench's importer reads such a case back without a mask).
"""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tvbench.cases import Case

DRAGBENCH_CATEGORIES = ("art_work", "land_scape", "building_city_view", "building_countryside_view", "animals",
                        "human_head", "human_upper_body", "human_full_body", "interior_design", "other_objects")
"""The folders DragDiffusion's ``drag_bench_evaluation`` scripts iterate (``all_category``)."""
DEFAULT_CATEGORY = "other_objects"
JPEG_QUALITY = 95
"""GoodDrag reads ``original.jpg``: JPEG is lossy, so tvbench writes it at quality 95 without chroma subsampling."""

_NUMPY2_RECONSTRUCT = b"cnumpy._core.multiarray\n_reconstruct\n"
_NUMPY1_RECONSTRUCT = b"cnumpy.core.multiarray\n_reconstruct\n"


def case_prompt(case: Case, inputs: frozenset[str]) -> str:
    """The one text a layout carries: the caption if declared, else the instruction if declared, else ''."""
    if "caption" in inputs and case.caption:
        return case.caption
    if "instruction" in inputs and case.instruction:
        return case.instruction
    return ""


def dragbench_category(case: Case) -> str:
    category = case.meta.get("category")
    return category if category in DRAGBENCH_CATEGORIES else DEFAULT_CATEGORY


def case_folder(layout: str, case: Case, input_root: Path) -> tuple[Path, str | None]:
    """Where the layout puts the case's files (``{input_dir}``), and its DragBench category (``{category}``)."""
    if layout == "dragbench":
        category = dragbench_category(case)
        return input_root / category / case.id, category
    return input_root / case.id, None


def write_layout(layout: str, case: Case, input_root: Path, *, inputs: frozenset[str], seed: int,
                 output: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """Write the case's files; return the file placeholders (paths) and facts worth recording."""
    input_root.mkdir(parents=True, exist_ok=True)
    source = case.open_image("source")
    mask = _mask(case, source.size)
    if layout == "tvbench":
        return _write_tvbench(case, input_root, source, mask if "mask" in inputs else None, inputs, seed, output)
    if layout == "dragbench":
        return _write_dragbench(case, input_root, source, mask, inputs)
    if layout == "gooddrag":
        return _write_gooddrag(case, input_root, source, mask)
    raise ValueError(f"unknown layout {layout!r}")


def _mask(case: Case, size: tuple[int, int]) -> np.ndarray:
    """The editable region as a bool (H, W) array; all False when the case has none."""
    if case.mask_source is None:
        return np.zeros((size[1], size[0]), dtype=bool)
    return case.open_mask("mask_source")


def _pixel_points(case: Case) -> tuple[list[list[int]], bool]:
    """``[[x, y], ...]`` (handle, target alternating) as integer clicks, and whether any point moved."""
    flat: list[list[int]] = []
    moved = False
    for xh, yh, xt, yt in case.points:
        for x, y in ((xh, yh), (xt, yt)):
            rx, ry = int(math.floor(x + 0.5)), int(math.floor(y + 0.5))
            moved = moved or rx != x or ry != y
            flat.append([rx, ry])
    return flat, moved


def _mask_png(mask: np.ndarray, path: Path) -> None:
    Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(path)


def _write_tvbench(case: Case, root: Path, source: Image.Image, mask: np.ndarray | None, inputs: frozenset[str],
                   seed: int, output: Path) -> tuple[dict[str, str], dict[str, Any]]:
    folder, _ = case_folder("tvbench", case, root)
    folder.mkdir()
    source.save(folder / "source.png")
    files = {"input_dir": str(folder), "source": str(folder / "source.png"), "case_json": str(folder / "case.json")}
    if mask is not None:
        _mask_png(mask, folder / "mask.png")
        files["mask"] = str(folder / "mask.png")
    record = {
        "id": case.id, "width": source.width, "height": source.height, "source": "source.png",
        "mask": "mask.png" if mask is not None else None,
        "has_mask": case.mask_source is not None,
        "caption": case.caption if "caption" in inputs else None,
        "instruction": case.instruction if "instruction" in inputs else None,
        "prompt": case_prompt(case, inputs),
        "points": [list(pair) for pair in case.points], "seed": seed, "output": str(output),
    }
    (folder / "case.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return files, {}


def dragbench_pickle(prompt: str, points: list[list[int]], mask: np.ndarray) -> bytes:
    """``meta_data.pkl`` bytes that numpy 1.x and 2.x both load, like DragBench's own files.

    DragBench's pickles name ``numpy.core.multiarray._reconstruct``; numpy 2 writes ``numpy._core``, which
    the numpy 1.x of the official repositories' pinned environments cannot import. Protocol 3 writes that
    name as a newline-terminated GLOBAL opcode, so it is swapped for the numpy 1.x name without touching
    anything else (numpy 2 still provides ``numpy.core.multiarray`` for such files).
    """
    data = pickle.dumps({"prompt": prompt, "points": points, "mask": np.ascontiguousarray(mask, dtype=np.uint8)},
                        protocol=3)
    data = data.replace(_NUMPY2_RECONSTRUCT, _NUMPY1_RECONSTRUCT)
    if b"numpy._core" in data:
        raise RuntimeError("meta_data.pkl would name numpy._core, which numpy 1.x cannot load")
    return data


def _write_dragbench(case: Case, root: Path, source: Image.Image, mask: np.ndarray,
                     inputs: frozenset[str]) -> tuple[dict[str, str], dict[str, Any]]:
    for name in DRAGBENCH_CATEGORIES:
        (root / name).mkdir()
    folder, category = case_folder("dragbench", case, root)
    assert category is not None
    folder.mkdir()
    source.save(folder / "original_image.png")
    points, moved = _pixel_points(case)
    (folder / "meta_data.pkl").write_bytes(dragbench_pickle(case_prompt(case, inputs), points, mask))
    files = {"input_dir": str(folder), "source": str(folder / "original_image.png"),
             "meta": str(folder / "meta_data.pkl"), "category": category}
    return files, ({"points_rounded": True} if moved else {})


def _write_gooddrag(case: Case, root: Path, source: Image.Image,
                    mask: np.ndarray) -> tuple[dict[str, str], dict[str, Any]]:
    from tvbench.judge.images import draw_drag_arrows

    folder, _ = case_folder("gooddrag", case, root)
    folder.mkdir()
    source.save(folder / "original.jpg", quality=JPEG_QUALITY, subsampling=0)
    _mask_png(mask, folder / "mask.png")
    points, moved = _pixel_points(case)
    (folder / "points.json").write_text(json.dumps({"points": points}), encoding="utf-8")
    draw_drag_arrows(source, case.points).save(folder / "image_with_points.jpg", quality=JPEG_QUALITY)
    files = {"input_dir": str(folder), "source": str(folder / "original.jpg"), "mask": str(folder / "mask.png"),
             "points_json": str(folder / "points.json"), "image_with_points": str(folder / "image_with_points.jpg")}
    return files, ({"points_rounded": True} if moved else {})
