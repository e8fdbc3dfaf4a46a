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
from tvbench.errors import BenchmarkError, CaseError, UnavailableError, one_line
from tvbench.progress import datasets_progress_off, track

DEFAULT_SPLIT = "test"
HUB_PROBE_TIMEOUT_S = 10.0  # huggingface_hub's own default for metadata requests (HF_HUB_ETAG_TIMEOUT)
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


def check_hub_dataset(repo_id: str) -> None:
    """Ask the hub about ``repo_id`` once, with a short timeout and no retries, before ``datasets`` does.

    Without a network ``datasets.load_dataset`` retries with backoff for about half a minute, printing a line per
    retry, before it fails; an unknown id costs the same. One request answers both at once. With
    ``HF_HUB_OFFLINE`` set nothing is asked: ``datasets`` then reads the HF_HOME cache and fails at once.
    """
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    if constants.HF_HUB_OFFLINE:
        return
    try:
        HfApi().dataset_info(repo_id, timeout=HUB_PROBE_TIMEOUT_S)
    except RepositoryNotFoundError:
        raise BenchmarkError(f"hf:{repo_id}: no such dataset on {constants.ENDPOINT} (a private or gated one needs "
                             "HF_TOKEN or `hf auth login`)") from None
    except HfHubHTTPError as exc:
        raise BenchmarkError(f"hf:{repo_id}: the hub at {constants.ENDPOINT} refused: {one_line(exc)}") from None
    except Exception as exc:  # the network layer's own errors (connection refused, DNS, timeout) vary by version
        raise BenchmarkError(f"hf:{repo_id}: cannot reach the hub at {constants.ENDPOINT} ({one_line(exc)}); "
                             "to use a copy in the HF_HOME cache, set HF_HUB_OFFLINE=1") from None


def load_dataset_split(source: str, split: str | None = None):
    """A ``datasets.Dataset`` from a local ``save_to_disk`` folder or a hub id (or a local data folder)."""
    datasets = _datasets()
    if not Path(source).exists():
        check_hub_dataset(source)
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


def _hub_cache_roots() -> list[Path]:
    """Where a hub dataset's own files live once downloaded (the only place its image paths may point)."""
    import datasets.config
    from huggingface_hub import constants

    return [Path(datasets.config.HF_DATASETS_CACHE).resolve(), Path(constants.HF_HUB_CACHE).resolve()]


def _row_resolver(roots: list[Path], base: Path | None, where: str, feature: str = "Image"):
    """Files of dataset rows (images, videos): embedded bytes, or a file inside ``roots`` (the dataset's folder,
    or for a hub dataset the Hugging Face cache it was downloaded to). The folder format's containment rule: a row
    naming ``/home/you/secret.png`` or ``../../x.png`` is refused, never read (``data export`` would copy it out).
    Relative paths are relative to ``base``, the dataset's folder; a hub dataset has none."""

    def resolve(case_id: str, field: str, value: Any) -> ImageRef:
        if isinstance(value, str):  # a plain string column of paths
            value = {"path": value, "bytes": None}
        if not isinstance(value, dict) or (value.get("bytes") is None and not value.get("path")):
            raise CaseError(case_id, field, f"must be a datasets {feature} feature (bytes or path)")
        if value.get("bytes") is not None:
            return ImageRef(label=f"{field} of row {case_id}", data=value["bytes"])
        raw = str(value["path"])
        path = Path(raw)
        if not path.is_absolute():
            if base is None:
                raise CaseError(case_id, field, f"{raw!r} is a relative path without embedded bytes in {where}")
            path = base / path
        try:
            path = path.resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop, an unreadable folder
            raise CaseError(case_id, field, f"cannot resolve {raw!r} ({exc})") from None
        if not any(path.is_relative_to(root) for root in roots):
            raise CaseError(case_id, field, f"{raw!r} points outside {where}; images must be embedded bytes or "
                                            "files inside it")
        return ImageRef(label=raw, path=path)

    return resolve


def row_file_resolver(source: str, feature: str = "Image"):
    """The resolver of the files a dataset's rows name (see :func:`_row_resolver`), for a folder or a hub id."""
    if Path(source).exists():
        base = Path(source).resolve()
        return _row_resolver([base], base, f"the dataset folder {source}", feature)
    return _row_resolver(_hub_cache_roots(), None, "the dataset's Hugging Face cache", feature)


def read_hf(source: str, split: str | None = None, spec: str | None = None) -> Benchmark:
    datasets = _datasets()
    table = load_dataset_split(source, split)
    spec = spec or f"hf:{source}"
    resolver = row_file_resolver(source)
    missing = {"id", "source"} - set(table.column_names)
    if missing:
        raise BenchmarkError(f"{spec}: the dataset lacks column(s) {', '.join(sorted(missing))}; "
                             f"expected columns: {', '.join(RECORD_FIELDS)}")
    for column in IMAGE_FIELDS:
        if column in table.column_names and isinstance(table.features[column], datasets.Image):
            with datasets_progress_off():
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
            cases.append(parse_case(raw, resolver, line=number))
        except CaseError as exc:
            errors.append(exc)
    name = source.rstrip("/").split("/")[-1]
    return build_benchmark(name, spec, cases, errors, {"hf_source": source, "split": split})


def to_hf_dataset(bench: Benchmark, progress: bool = False):
    """The benchmark as a ``datasets.Dataset`` with image bytes embedded (for ``save_to_disk`` or ``push_to_hub``)."""
    datasets = _datasets()
    columns: dict[str, list] = {name: [] for name in RECORD_FIELDS}
    for case in track(bench.cases, "writing", enabled=progress):
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


def write_hf(bench: Benchmark, out: Path, progress: bool = False) -> Path:
    dataset = to_hf_dataset(bench, progress=progress)
    with datasets_progress_off():
        dataset.save_to_disk(str(out))
    return Path(out)
