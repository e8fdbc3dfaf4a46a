"""Score folders of edits with the TV-Edit-Bench metrics.

``score_results(results)`` finds every method folder under ``results`` (folders written by ``tvbench run``,
or any folder of ``<case_id>.png`` made elsewhere), scores each edit against its case, and writes

    scores.jsonl        one row per (case, method, metric): value and status
    summary.json        per method and metric: mean, coverage, status counts; plus what scored it
    scores.cache.jsonl  append-only memo of computed rows; a rerun recomputes only rows whose edit or
                        metric configuration changed (or that failed), and a killed run loses nothing

The loop runs case by case: the case's source and target are decoded once, every method's edit of that
case is scored next to them, and each distinct image goes through each network once (a bounded store of
recent features also catches images shared across cases, such as a magnitude group's common source).
"""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np
from PIL import Image, UnidentifiedImageError

from tvbench.cases import Benchmark, Case, ImageRef, load_benchmark
from tvbench.cases.case import pixel_digest
from tvbench.device import torch_device
from tvbench.errors import CaseError, ConfigError, ResultsError, one_line
from tvbench.features import (DEFAULT_BACKBONE, DEFAULT_RESOLUTION, RANDOM_BACKBONES, DinoBackbone, FeatureStore,
                              LpipsModel)
from tvbench.features.cache import FeatureCache, default_feature_cache_dir
from tvbench.io import (append_jsonl, atomic_write_json, atomic_write_text, config_hash, finite_or_none, iter_files,
                        jsonl_line, read_jsonl)
from tvbench.metrics import (ERROR, MISSING, NOT_APPLICABLE, OK, STATUSES, Metric, MetricResult, default_metrics,
                             get_metric)
from tvbench.progress import track
from tvbench.provenance import environment, now
from tvbench.runner import read_manifest

if TYPE_CHECKING:
    from tvbench.judge.config import JudgeConfig

SCORES_FILE = "scores.jsonl"
SUMMARY_FILE = "summary.json"
CACHE_FILE = "scores.cache.jsonl"
SCORES_SCHEMA_VERSION = 1
SMOKE_BACKBONE = "random-tiny"
DEFAULT_MATCH_RESOLUTION = 896
DEFAULT_DIFT_MODEL = "stabilityai/stable-diffusion-2-1"
EDIT_SUFFIXES = (".png",)


@dataclass
class ScoringConfig:
    """How to score. ``smoke`` swaps every network for deterministic random weights (offline pipeline checks)."""

    metrics: list[str] | None = None  # None: every image metric
    backbone: str = DEFAULT_BACKBONE
    resolution: int = DEFAULT_RESOLUTION  # long side, in pixels, of the images fed to DINOv3
    match_resolution: int = DEFAULT_MATCH_RESOLUTION  # long side for the high-resolution features of point matching
    lpips_net: str = "alex"
    smoke: bool = False
    device: str = "auto"
    dtype: str = "float32"
    rescore: bool = False  # ignore the memo of earlier rows
    feature_cache: str | None = "auto"  # folder of the on-disk feature cache; "auto": the tvbench cache; None: off
    dift_model: str = DEFAULT_DIFT_MODEL  # Stable Diffusion 2.1 weights for the DIFT variant of DragBench's MD
    judge: "JudgeConfig | None" = None  # judge metrics (pf, cp, ...): server, model, decoding; see tvbench/judge/


class EditContext:
    """What a metric sees: the case, the edit (at the source's size), lazily decoded images and features."""

    def __init__(self, case: Case, edit: Image.Image, images: "CaseImages", scorer: "Scorer",
                 store: FeatureStore | None, original: Image.Image | None = None):
        self.case = case
        self.edit = edit
        self.original = original if original is not None else edit  # the edit as the method wrote it
        self._images = images
        self._scorer = scorer
        self._store = store

    def image(self, role: str) -> Image.Image:
        return self.edit if role == "edit" else self._images.get(role)

    def mask(self, role: str) -> np.ndarray:
        return self._images.mask(role)

    def edit_resized(self, resample: int) -> Image.Image:
        """The edit at the source's size with a given resampling filter (protocols that prescribe one)."""
        size = self._images.get("source").size
        return self.edit if self.original.size == size else self.original.resize(size, resample)

    def dino(self, role: str | Image.Image, resolution: int | None = None):
        """DINOv3 features of a role's image (or of an image) at ``resolution`` (default: the scoring one)."""
        if self._store is None:
            raise ConfigError("this metric needs DINOv3 features but no backbone was loaded")
        image = self.image(role) if isinstance(role, str) else role
        return self._store.get(image, resolution)

    def match_grid(self, role: str | Image.Image):
        """The patch grid used for point matching: DINOv3 at the matching resolution."""
        return self.dino(role, self._scorer.config.match_resolution).patches

    def dift_grid(self, role: str | Image.Image):
        """DIFT features (SD 2.1) as a ``(rows, cols, C)`` grid, conditioned on the case's caption."""
        if self._scorer.dift is None:
            raise ConfigError("this metric needs DIFT features but no Stable Diffusion model was loaded")
        image = self.image(role) if isinstance(role, str) else role
        return self._scorer.dift_features(image, self.case.caption or "")

    @property
    def lpips(self) -> LpipsModel:
        if self._scorer.lpips is None:
            raise ConfigError("this metric needs LPIPS but no LPIPS network was loaded")
        return self._scorer.lpips


class CaseImages:
    """A case's images, each decoded once and shared by every method's edit of the case."""

    def __init__(self, case: Case):
        self.case = case
        self._decoded: dict[str, Image.Image] = {}
        self._masks: dict[str, np.ndarray] = {}

    def get(self, role: str) -> Image.Image:
        if role not in self._decoded:
            self._decoded[role] = self.case.open_image(role)
        return self._decoded[role]

    def mask(self, role: str) -> np.ndarray:
        """A mask ("mask_source" or "mask_target") as a boolean array, decoded once."""
        if role not in self._masks:
            self._masks[role] = self.case.open_mask(role)
        return self._masks[role]


class Scorer:
    """Loads the networks the chosen metrics need, once, and scores edits with them."""

    def __init__(self, config: ScoringConfig | None = None):
        self.config = config = config or ScoringConfig()
        names = list(dict.fromkeys(config.metrics or default_metrics()))
        self.metrics: list[Metric] = [get_metric(name) for name in names]
        needs = set().union(*(metric.models for metric in self.metrics))
        for flag, value in (("--resolution", config.resolution), ("--match-resolution", config.match_resolution)):
            if value < 16:
                raise ConfigError(f"{flag} {value} is too small (at least one 16-pixel patch)")
        device = torch_device(config.device)
        self.backbone = None
        if "dino" in needs:
            spec = config.backbone
            if config.smoke and spec not in RANDOM_BACKBONES:  # smoke: random weights, by default the tiny ones
                spec = SMOKE_BACKBONE
            self.backbone = DinoBackbone.from_pretrained(spec, device=str(device), dtype=config.dtype)
        self.lpips = LpipsModel(config.lpips_net, random_trunk=config.smoke, device=device) if "lpips" in needs \
            else None
        self.dift = None
        if "dift" in needs:
            if config.smoke:
                raise ConfigError("--smoke has no random DIFT model; drop dragbench_md_dift from --metrics")
            from tvbench.features.dift import DiftBackbone

            self.dift = DiftBackbone.from_pretrained(config.dift_model, device=str(device), dtype=config.dtype)
        self._dift_cache: dict[tuple[str, str], object] = {}
        self.device = device
        # --- judge metrics (tvbench/judge/): graded after the image loop, in a concurrent phase of their own ---
        self.image_metrics = [metric for metric in self.metrics if "judge" not in metric.models]
        judged = [metric for metric in self.metrics if "judge" in metric.models]
        self.judge = None
        if judged:
            from tvbench.judge.phase import JudgeSession

            self.judge = JudgeSession(config.judge, judged)
        # --- end judge ---
        models = self.models()
        self.keys = {metric.name: config_hash({"metric": metric.name, "version": metric.version,
                                               "models": {m: models[m] for m in sorted(metric.models)}})
                     for metric in self.metrics}
        if self.judge is not None:  # judge keys leave out the server address (same model, same replies)
            self.keys.update(self.judge.keys())

    def models(self) -> dict[str, dict]:
        described: dict[str, dict] = {}
        if self.backbone is not None:
            resolution, patch = self.config.resolution, self.backbone.patch_size
            described["dino"] = {**self.backbone.describe(), "resolution": resolution,
                                 "match_resolution": self.config.match_resolution,
                                 "input": f"long side {resolution} px (matching: {self.config.match_resolution} px), "
                                          f"both sides multiples of {patch}, aspect kept, bicubic"}
        if self.lpips is not None:
            described["lpips"] = self.lpips.describe()
        if self.dift is not None:
            described["dift"] = self.dift.describe()
        if self.judge is not None:
            described["judge"] = self.judge.describe()
        return described

    def describe(self) -> dict:
        return {"models": self.models(), "smoke": self.config.smoke, "device": str(self.device),
                "metric_keys": self.keys}

    def new_store(self) -> FeatureStore | None:
        if self.backbone is None:
            return None
        disk = None
        if self.config.feature_cache:
            cache = self.config.feature_cache
            root = default_feature_cache_dir() if cache == "auto" else Path(cache)
            disk = FeatureCache(root, {"network": self.backbone.describe(), "input": "dino-v1"})
        return FeatureStore(self.backbone, self.config.resolution, disk=disk)

    def dift_features(self, image: Image.Image, prompt: str):
        """DIFT grid ``(rows, cols, C)`` of an image, computed once per (pixels, prompt) in this run."""
        key = (pixel_digest(image), prompt)
        if key not in self._dift_cache:
            if len(self._dift_cache) >= 8:
                self._dift_cache.pop(next(iter(self._dift_cache)))
            self._dift_cache[key] = self.dift.feature_map(image, prompt).permute(1, 2, 0).contiguous()
        return self._dift_cache[key]

    def score(self, case: Case, edit: Image.Image, images: CaseImages, store: FeatureStore | None,
              metrics: Iterable[Metric] | None = None, edit_original: Image.Image | None = None
              ) -> dict[str, MetricResult]:
        """Every metric on one edit; ``edit_original`` is the edit before it was fitted to the source's size."""
        ctx = EditContext(case, edit, images, self, store, edit_original)
        results = {}
        for metric in metrics if metrics is not None else self.image_metrics:
            reason = metric.not_applicable_reason(case)
            if reason:
                results[metric.name] = MetricResult(None, NOT_APPLICABLE, reason)
                continue
            try:
                result = metric.compute(ctx)
            except Exception as exc:  # one failing metric must not lose the others
                results[metric.name] = MetricResult(None, ERROR, one_line(exc))
                continue
            if not isinstance(result, MetricResult):
                result = MetricResult(result, OK)
            value = finite_or_none(result.value)
            results[metric.name] = MetricResult(value, OK, result.detail, result.extra) if value is not None else \
                MetricResult(None, ERROR, "the metric produced a non-finite number")
        return results

    def without_edit(self, case: Case) -> dict[str, MetricResult]:
        """Results for a case the method left without an image: missing, unless the metric does not apply."""
        results = {}
        for metric in self.image_metrics:
            reason = metric.not_applicable_reason(case)
            results[metric.name] = MetricResult(None, NOT_APPLICABLE, reason) if reason else \
                MetricResult(None, MISSING, "no edit image")
        return results

    def score_images(self, edit: Image.Image, *, target: Image.Image | None = None,
                     source: Image.Image | None = None, points=(), dense_points=()) -> dict[str, MetricResult]:
        """Score one in-memory edit. Without ``source`` the edit stands in for it (source-referenced metrics then
        compare the edit with itself); ``points`` / ``dense_points`` are ``(hx, hy, tx, ty)`` tuples."""
        case = in_memory_case(source if source is not None else edit, target, points=tuple(map(tuple, points)),
                              dense_points=tuple(map(tuple, dense_points)))
        images = CaseImages(case)
        return self.score(case, fit_edit(edit, images.get("source").size)[0], images, self.new_store(),
                          edit_original=edit.convert("RGB"))


def score_images(edit: Image.Image, *, target: Image.Image | None = None, source: Image.Image | None = None,
                 points=(), dense_points=(), metrics: list[str] | None = None, backbone: str = DEFAULT_BACKBONE,
                 **options) -> dict[str, MetricResult]:
    """Score one in-memory edit with freshly loaded networks (keep a :class:`Scorer` to score many)."""
    scorer = Scorer(ScoringConfig(metrics=metrics, backbone=backbone, **options))
    return scorer.score_images(edit, target=target, source=source, points=points, dense_points=dense_points)


def in_memory_case(source: Image.Image, target: Image.Image | None, case_id: str = "image", **fields) -> Case:
    def ref(image: Image.Image, role: str) -> ImageRef:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG")
        return ImageRef(label=f"<in-memory {role}>", data=buffer.getvalue())

    return Case(id=case_id, source=ref(source, "source"), target=ref(target, "target") if target is not None else None,
                **fields)


def fit_edit(edit: Image.Image, size: tuple[int, int]) -> tuple[Image.Image, bool]:
    """The edit at the case's size (bicubic), and whether it had to be resized."""
    edit = edit.convert("RGB")
    if edit.size == size:
        return edit, False
    return edit.resize(size, Image.BICUBIC), True


# --- results folders ------------------------------------------------------------------------------------------


@dataclass
class MethodRun:
    """A folder of edits to score, with the manifest ``tvbench run`` wrote (absent for outside edits)."""

    name: str
    folder: Path
    manifest: dict | None = None

    def edit_path(self, case_id: str) -> Path:
        return self.folder / f"{case_id}.png"

    def describe(self) -> dict:
        manifest = self.manifest or {}
        return {"method": manifest.get("method", self.name), "inputs": manifest.get("inputs", "?"),
                "config_hash": manifest.get("config_hash"), "seed": manifest.get("seed"),
                "folder": self.folder.name, "source": "tvbench run" if self.manifest else "external edits"}


def _has_edits(folder: Path) -> bool:
    return bool(iter_files(folder, EDIT_SUFFIXES))


def discover_runs(results: Path) -> list[MethodRun]:
    """Method folders under ``results``: subfolders with a manifest or PNG edits, or ``results`` itself."""
    results = Path(results)
    if not results.is_dir():
        raise ResultsError(f"{results}: no such results folder")
    if _has_edits(results):
        return [MethodRun(results.resolve().name, results, read_manifest(results))]
    runs = []
    for folder in sorted(p for p in results.iterdir() if p.is_dir() and not p.name.startswith(".")):
        manifest = read_manifest(folder)
        if manifest is not None or _has_edits(folder):
            runs.append(MethodRun(folder.name, folder, manifest))
    if not runs:
        raise ResultsError(f"{results}: no method folders here (folders of <case_id>.png, e.g. from tvbench run)")
    return runs


def resolve_benchmark(runs: list[MethodRun], bench_spec: str | None, progress: bool = False) -> Benchmark:
    """The benchmark the edits answer: ``--bench`` if given, else the one named by the run manifests."""
    recorded = {run.name: run.manifest.get("benchmark", {}) for run in runs if run.manifest}
    if bench_spec is None:
        if not recorded:
            raise ResultsError("these edits were made outside tvbench (no manifest.json); pass --bench to say "
                               "which benchmark they answer")
        specs = {(info.get("spec"), info.get("hash")) for info in recorded.values()}
        if len(specs) > 1:
            listing = "; ".join(f"{name}: {info.get('name')} {str(info.get('hash'))[7:19]}"
                                for name, info in recorded.items())
            raise ResultsError(f"the method folders answer different benchmarks ({listing}); score them separately")
        bench_spec = next(iter(specs))[0]
    bench = load_benchmark(bench_spec, progress=progress)
    for name, info in recorded.items():
        if info.get("hash") != bench.hash:
            raise ResultsError(f"{name} was run on benchmark {info.get('name')} ({str(info.get('hash'))[7:19]}) but "
                               f"{bench.spec} is now {bench.short_hash}; rerun the method or pass the right --bench")
    return bench


class ScoreMemo:
    """Rows computed before, keyed by (method, case, metric, metric key, edit hash); append-only on disk."""

    def __init__(self, path: Path, enabled: bool = True):
        self.path = path
        self.reused = 0
        self._rows: dict[tuple, dict] = {}
        if enabled:
            for row in read_jsonl(path):
                if row.get("status") in (OK, NOT_APPLICABLE):
                    self._rows[self._key(row)] = row

    @staticmethod
    def _key(row: dict) -> tuple:
        return row.get("method"), row.get("case"), row.get("metric"), row.get("key"), row.get("edit_sha")

    def get(self, method: str, case: str, metric: str, key: str, edit_sha: str | None) -> dict | None:
        row = self._rows.get((method, case, metric, key, edit_sha))
        self.reused += row is not None
        return row

    def add(self, row: dict) -> None:
        if row["status"] in (OK, NOT_APPLICABLE):
            self._rows[self._key(row)] = row
            append_jsonl(self.path, row)


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _open_edit(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image.convert("RGB")


def _row(run: MethodRun, case: Case, metric: str, key: str, result: MetricResult, edit_sha: str | None,
         resized: bool) -> dict:
    return {"case": case.id, "method": run.name, "metric": metric, "value": result.value, "status": result.status,
            "detail": result.detail, "edit_sha": edit_sha, "resized": resized, "key": key, **(result.extra or {})}


def _prefetch(scorer: Scorer, store: FeatureStore, images: CaseImages,
              pending: list[tuple["MethodRun", str, Image.Image, Image.Image, bool, list[Metric]]]) -> None:
    """Encode what the pending metrics will read, one batch per resolution, before computing them."""
    resolutions = {"global": scorer.config.resolution, "match": scorer.config.match_resolution}
    wanted: dict[int, list[Image.Image]] = {}
    for *_, edit, _original, _resized, todo in pending:
        applicable = [m for m in todo if m.not_applicable_reason(images.case) is None]
        for role, scale in set().union(*(m.features for m in applicable)):
            batch = wanted.setdefault(resolutions[scale], [])
            if role == "edit":
                batch.append(edit)
            elif not any(image is images.get(role) for image in batch):
                batch.insert(0, images.get(role))
    for resolution, batch in wanted.items():
        store.prefetch(batch, resolution)


def _score_case(scorer: Scorer, case: Case, runs: list[MethodRun], memo: ScoreMemo,
                store: FeatureStore | None) -> list[dict]:
    images = CaseImages(case)
    rows: list[dict] = []
    pending: list[tuple[MethodRun, str, Image.Image, bool, list[Metric]]] = []
    for run in runs:
        path = run.edit_path(case.id)
        if not path.is_file():
            rows += [_row(run, case, name, scorer.keys[name], result, None, False)
                     for name, result in scorer.without_edit(case).items()]
            continue
        sha = _file_sha(path)
        todo = []
        for metric in scorer.image_metrics:
            cached = memo.get(run.name, case.id, metric.name, scorer.keys[metric.name], sha)
            if cached is not None:
                rows.append(cached)
            else:
                todo.append(metric)
        if not todo:
            continue
        try:
            original = _open_edit(path)
            edit, resized = fit_edit(original, images.get("source").size)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            error = MetricResult(None, ERROR, f"cannot decode {path.name}: {one_line(exc)}")
            rows += [_row(run, case, m.name, scorer.keys[m.name], error, sha, False) for m in todo]
            continue
        pending.append((run, sha, edit, original, resized, todo))
    if store is not None:
        try:
            _prefetch(scorer, store, images, pending)
        except CaseError:
            pass  # the case's own image is unreadable: each metric reports it below
    for run, sha, edit, original, resized, todo in pending:
        for name, result in scorer.score(case, edit, images, store, todo, original).items():
            row = _row(run, case, name, scorer.keys[name], result, sha, resized)
            memo.add(row)
            rows.append(row)
    return rows


def aggregate(rows: list[dict], runs: list[MethodRun], metric_names: list[str], n_cases: int) -> dict:
    """Per method and metric: mean over ``ok`` rows, coverage = ok / applicable cases, status counts."""
    methods: dict[str, dict] = {}
    for run in runs:
        per_metric = {}
        run_rows = [r for r in rows if r["method"] == run.name]
        for name in metric_names:
            metric_rows = [r for r in run_rows if r["metric"] == name]
            counts = {status: sum(1 for r in metric_rows if r["status"] == status) for status in STATUSES}
            ok_rows = [r for r in metric_rows if r["status"] == OK]
            values = [r["value"] for r in ok_rows]
            applicable = n_cases - counts[NOT_APPLICABLE]
            per_metric[name] = {
                "mean": sum(values) / len(values) if values else None,
                "n": len(values),
                "applicable": applicable,
                "coverage": len(values) / applicable if applicable else None,
                "status_counts": counts,
            }
            if any("points" in r for r in ok_rows):  # point metrics: the mean over all points pooled, too
                points = sum(r.get("points", 0) for r in ok_rows)
                per_metric[name]["pooled_mean"] = \
                    sum(r["value"] * r.get("points", 0) for r in ok_rows) / points if points else None
                per_metric[name]["points"] = points
            derived = sum(1 for r in ok_rows if r.get("mask") == "derived")
            if derived:
                per_metric[name]["derived_masks"] = derived
        resized = len({r["case"] for r in run_rows if r.get("resized")})
        methods[run.name] = {**run.describe(), "resized_edits": resized, "metrics": per_metric}
    return methods


def score_results(results: Path, config: ScoringConfig | None = None, bench_spec: str | None = None,
                  progress: bool = True) -> dict:
    """Score every method folder under ``results``; write rows and summary there; return the summary."""
    results = Path(results)
    config = config or ScoringConfig()
    runs = discover_runs(results)
    bench = resolve_benchmark(runs, bench_spec, progress=progress)
    scorer = Scorer(config)
    memo = ScoreMemo(results / CACHE_FILE, enabled=not config.rescore)
    store = scorer.new_store()
    rows: list[dict] = []
    started = time.perf_counter()
    for case in track(bench.cases, "scoring", enabled=progress):
        rows += _score_case(scorer, case, runs, memo, store)
    if scorer.judge is not None:  # the judge phase: every judge row still needed, concurrently (tvbench/judge/)
        rows += scorer.judge.score(bench, runs, memo, scorer.keys, results, progress=progress)
    work = {"seconds": round(time.perf_counter() - started, 3),
            "rows_reused": memo.reused, "rows_computed": len(rows) - memo.reused}
    if store is not None:
        work.update(dino_forwards=store.forwards, feature_cache_hits=store.disk.hits if store.disk else 0,
                    feature_cache=str(store.disk.folder) if store.disk else None)
    metric_names = [m.name for m in scorer.metrics]
    summary = {
        "schema_version": SCORES_SCHEMA_VERSION,
        "kind": "tvbench.scores",
        "created": now(),
        "benchmark": bench.describe(),
        "scorer": scorer.describe(),
        "metrics": {m.name: m.describe() for m in scorer.metrics},
        "edits_resized_to": "source size (bicubic) before scoring, when an edit's size differs",
        "methods": aggregate(rows, runs, metric_names, len(bench)),
        "work": work,  # what this run computed (reused rows and cached features cost nothing)
        "environment": environment(),
    }
    if scorer.judge is not None:
        scorer.judge.annotate(summary, rows)
    atomic_write_text(results / SCORES_FILE, "".join(jsonl_line(r) for r in rows))
    atomic_write_json(results / SUMMARY_FILE, summary)
    return summary
