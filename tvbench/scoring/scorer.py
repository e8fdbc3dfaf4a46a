"""The scorer: loads the networks the chosen metrics need, once, and scores one edit with every metric."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from PIL import Image

from tvbench.cases import Case
from tvbench.cases.case import pixel_digest
from tvbench.device import torch_device
from tvbench.errors import ConfigError, one_line
from tvbench.features.defaults import DEFAULT_BACKBONE, RANDOM_BACKBONES
from tvbench.io import config_hash, finite_or_none
from tvbench.metrics import Metric, default_metrics, get_metric
from tvbench.scoring.config import SMOKE_BACKBONE, ScoringConfig
from tvbench.scoring.context import CaseImages, EditContext, in_memory_case
from tvbench.scoring.edits import fit_edit
from tvbench.scoring.rows import ERROR, MISSING, NOT_APPLICABLE, OK, MetricResult
from tvbench.threads import apply_threads

if TYPE_CHECKING:
    from tvbench.features import FeatureStore


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
        # before any network is built; one thread for --smoke's tiny networks on the CPU unless a count was chosen
        tiny = config.smoke and (config.backbone == SMOKE_BACKBONE or config.backbone not in RANDOM_BACKBONES)
        self.threads = apply_threads(config.threads, small_models=tiny and device.type == "cpu")
        self.backbone = None
        # The networks' modules (and torch, timm, lpips behind them) are imported only when a metric needs them.
        if "dino" in needs:
            from tvbench.features.dino import DinoBackbone

            spec = config.backbone
            if config.smoke and spec not in RANDOM_BACKBONES:  # smoke: random weights, by default the tiny ones
                spec = SMOKE_BACKBONE
            self.backbone = DinoBackbone.from_pretrained(spec, device=str(device), dtype=config.dtype)
        self.lpips = None
        if "lpips" in needs:
            from tvbench.features.lpips import LpipsModel

            self.lpips = LpipsModel(config.lpips_net, random_trunk=config.smoke, device=device)
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

    @property
    def match_resolution(self) -> int:
        return self.config.match_resolution

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
                "threads": self.threads.describe(), "metric_keys": self.keys}

    def new_store(self) -> "FeatureStore | None":
        if self.backbone is None:
            return None
        from tvbench.features.cache import FeatureCache, default_feature_cache_dir
        from tvbench.features.store import FeatureStore

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
            if result.status == NOT_APPLICABLE:  # found out only while computing (e.g. a group without siblings)
                results[metric.name] = result
                continue
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
