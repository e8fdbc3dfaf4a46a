"""Benchmarks as Hugging Face ``datasets``: the same columns as ``cases.jsonl``, images as ``Image`` features.

Reads a hub id (``hf:org/name``, honouring ``HF_HUB_OFFLINE`` and ``HF_HOME`` like every ``datasets`` call) or a
local ``save_to_disk`` folder. ``meta`` is stored as a JSON string, since a dataset column needs one schema
for every row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tvbench.cases.benchmark import Benchmark, build_benchmark
from tvbench.cases.case import IMAGE_FIELDS, POINT_FIELDS, RECORD_FIELDS, TEXT_FIELDS, Case, ImageRef, parse_case
from tvbench.errors import BenchmarkError, CaseError, UnavailableError

DEFAULT_SPLIT = "test"
_SAVE_TO_DISK_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


def _datasets():
    try:
        import datasets
    except ImportError:
        raise UnavailableError('reading Hugging Face datasets needs the `datasets` package '
                               '(install with: pip install "tvbench[hf]")') from None
    return datasets


def is_saved_dataset(path: Path) -> bool:
    return any((Path(path) / marker).is_file() for marker in _SAVE_TO_DISK_MARKERS)


def _pick_split(loaded: Any, split: str | None, where: str):
    datasets = _datasets()
    if isinstance(loaded, datasets.Dataset):
        return loaded
    names = list(loaded.keys())
    if split is None:
        split = DEFAULT_SPLIT if DEFAULT_SPLIT in names else (names[0] if len(names) == 1 else None)
    if split not in names:
        raise BenchmarkError(f"{where}: choose a split with hf:ID@SPLIT; it has {', '.join(names)}")
    return loaded[split]


def load_dataset_split(source: str, split: str | None = None):
    """A ``datasets.Dataset`` from a local ``save_to_disk`` folder or a hub id (or a local data folder)."""
    datasets = _datasets()
    try:
        if is_saved_dataset(Path(source)):
            loaded = datasets.load_from_disk(source)
        else:
            loaded = datasets.load_dataset(source) if split is None else datasets.load_dataset(source, split=split)
    except (FileNotFoundError, ConnectionError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BenchmarkError(f"hf:{source}: cannot load the dataset ({first}); offline runs need it in "
                             "the HF_HOME cache or a local save_to_disk folder") from None
    return _pick_split(loaded, split, f"hf:{source}")


def _row_resolver(case_id: str, field: str, value: Any) -> ImageRef:
    if isinstance(value, dict) and (value.get("bytes") is not None or value.get("path")):
        if value.get("bytes") is not None:
            return ImageRef(label=f"{field} of row {case_id}", data=value["bytes"])
        return ImageRef(label=value["path"], path=Path(value["path"]))
    raise CaseError(case_id, field, "must be a datasets Image feature (bytes or path)")


def read_hf(source: str, split: str | None = None, spec: str | None = None) -> Benchmark:
    datasets = _datasets()
    table = load_dataset_split(source, split)
    spec = spec or f"hf:{source}"
    missing = {"id", "source"} - set(table.column_names)
    if missing:
        raise BenchmarkError(f"{spec}: the dataset lacks column(s) {', '.join(sorted(missing))}; "
                             f"expected columns: {', '.join(RECORD_FIELDS)}")
    for column in IMAGE_FIELDS:
        if column in table.column_names and isinstance(table.features[column], datasets.Image):
            table = table.cast_column(column, datasets.Image(decode=False))
    cases: list[Case] = []
    errors: list[CaseError] = []
    for number, row in enumerate(table, start=1):
        raw = {key: value for key, value in row.items() if value is not None}
        if isinstance(raw.get("meta"), str):
            try:
                raw["meta"] = json.loads(raw["meta"])
            except ValueError as exc:
                errors.append(CaseError(str(raw.get("id")), "meta", f"invalid JSON ({exc})", line=number))
                continue
        for name in POINT_FIELDS:
            if raw.get(name) == []:
                raw.pop(name)
        try:
            cases.append(parse_case(raw, _row_resolver, line=number))
        except CaseError as exc:
            errors.append(exc)
    name = source.rstrip("/").split("/")[-1]
    return build_benchmark(name, spec, cases, errors, {"hf_source": source, "split": split})


def to_hf_dataset(bench: Benchmark):
    """The benchmark as a ``datasets.Dataset`` with image bytes embedded (for ``save_to_disk`` or ``push_to_hub``)."""
    datasets = _datasets()
    columns: dict[str, list] = {name: [] for name in RECORD_FIELDS}
    for case in bench.cases:
        columns["id"].append(case.id)
        for name in IMAGE_FIELDS:
            ref = case.image(name)
            columns[name].append(None if ref is None else {"bytes": ref.read_bytes(), "path": None})
        for name in TEXT_FIELDS + ("subtask",):
            columns[name].append(getattr(case, name))
        for name in POINT_FIELDS:
            columns[name].append([list(p) for p in getattr(case, name)])
        columns["meta"].append(json.dumps(dict(case.meta)) if case.meta else None)
    pair = datasets.Sequence(datasets.Value("float64"), length=4)
    features = datasets.Features({
        "id": datasets.Value("string"),
        **{name: datasets.Image() for name in IMAGE_FIELDS},
        **{name: datasets.Value("string") for name in TEXT_FIELDS + ("subtask", "meta")},
        **{name: datasets.Sequence(pair) for name in POINT_FIELDS},
    })
    return datasets.Dataset.from_dict(columns, features=features)


def write_hf(bench: Benchmark, out: Path) -> Path:
    to_hf_dataset(bench).save_to_disk(str(out))
    return Path(out)
