"""Periodic validation edits on held-out cases, scored with tvbench's own metrics.

Every ``--val-every`` steps the main process edits the held-out cases with the current controller (fixed
seeds, ``--val-steps`` denoising steps, the authors' CFG 3.0 for Qwen and the pipeline's 3.5 guidance for
Kontext) and writes them to ``<output>/validation/step-<N>/<case>.png``. Its scores join the held-out Z0 loss
in that step's line of ``validation.jsonl``: the mean of each target-referenced image metric (DS_global,
DS_local, LPIPS, MD_s) and how many cases it covers. ``--val-smoke`` scores with tvbench's small random
networks (offline checks only).
"""

from __future__ import annotations

from typing import Any

from tvbench.io import atomic_save_png

METRICS = ["ds_global_tgt", "ds_local_tgt", "lpips_tgt", "md_s"]
CFG = {"qwen": 3.0, "kontext": 3.5}  # official demo default CFG 3.0 (Qwen); FluxKontextPipeline guidance default


class Validator:
    def __init__(self, pipe: Any, cases: list, config: Any):
        self.pipe, self.cases, self.config = pipe, cases, config
        self._scorer = None

    @property
    def scorer(self):
        if self._scorer is None:
            from tvbench.scoring import Scorer, ScoringConfig

            self._scorer = Scorer(ScoringConfig(metrics=METRICS, smoke=self.config.val_smoke, feature_cache=None))
        return self._scorer

    def __call__(self, controller, step: int) -> dict[str, Any]:
        import torch

        from tvbench.methods import case_seed
        from tvbench_adapters.tvedit.edit import controlled_edit
        from tvbench_adapters.tvedit.spec import backbone_of

        folder = self.config.output / "validation" / f"step-{step:07d}"
        values: dict[str, list[float]] = {name: [] for name in METRICS}
        controller.eval()
        with torch.no_grad():
            for case in self.cases:
                source = case.open_image("source")
                edit = controlled_edit(self.pipe, controller, source, case.instruction, case.points,
                                       steps=self.config.val_steps, seed=case_seed(self.config.seed, case.id),
                                       cfg=CFG[backbone_of(self.pipe.transformer)], resize=self.config.resize,
                                       area=self.config.val_area)
                atomic_save_png(folder / f"{case.id}.png", edit)
                results = self.scorer.score_images(edit, target=case.open_image("target"), source=source,
                                                   points=case.points)
                for name, result in results.items():
                    if result.value is not None and name in values:
                        values[name].append(float(result.value))
        record: dict[str, Any] = {"cases": len(self.cases)}
        for name, found in values.items():
            record[name] = sum(found) / len(found) if found else None
            record[f"{name}_n"] = len(found)
        return record
