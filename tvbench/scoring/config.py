"""How to score: :class:`ScoringConfig` and its defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tvbench.analysis.bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES, DEFAULT_SEED
from tvbench.features.defaults import DEFAULT_BACKBONE, DEFAULT_RESOLUTION

if TYPE_CHECKING:
    from tvbench.judge.config import JudgeConfig

SMOKE_BACKBONE = "random-tiny"
DEFAULT_MATCH_RESOLUTION = 896
DEFAULT_DIFT_MODEL = "stabilityai/stable-diffusion-2-1"


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
    # confidence intervals in the summary (tvbench/analysis/): they never change a row, so rows are reused
    ci_level: float = DEFAULT_LEVEL
    bootstrap: int = DEFAULT_RESAMPLES  # resamples
    ci_method: str = "bca"  # or "percentile" (tvbench.analysis.bootstrap.DEFAULT_METHOD)
    ci_seed: int = DEFAULT_SEED
    threads: int | None = None  # torch CPU threads; None: $TVBENCH_THREADS, $OMP_NUM_THREADS or the cores available
