"""The DragBench protocol (paper Appendix F, following DragDiffusion's evaluation scripts): MD and IF.

- MD: each handle point's feature in the source is matched over the whole edit (no window: full-image argmax of
  the cosine) and the distance to the target point is measured in pixels. DragDiffusion's script uses DIFT
  features of Stable Diffusion 2.1 (``dragbench_md_dift``, needs those weights); the default here uses DINOv3
  (``dragbench_md``) at the matching resolution, with the patch grid upsampled bilinearly to the pixel grid, as
  the script does with its DIFT map. The script averages over all points pooled, so that is the headline; the
  per-case mean is in the summary too.
- IF = 1 - LPIPS(AlexNet) between source and edit, both scaled to [-1, 1] and resized to 224 x 224 (bilinear),
  as DragDiffusion's similarity script does.

As in those scripts, an edit whose size differs from the source is first resized to the source's size with
bilinear resampling (the other metrics use bicubic).
"""

from __future__ import annotations

from PIL import Image

from tvbench.metrics.base import OK, Metric, MetricResult
# The formulas (tvbench.metrics.functional) need torch: they are imported inside compute(), so that reading a
# metric's declaration (`tvbench ls`, reports) does not load torch.

IF_SIZE = (224, 224)


class _DragBenchMD(Metric):
    higher_is_better = False
    range = (0.0, float("inf"))
    requires = frozenset({"points"})
    reference = "Appendix F; DragDiffusion drag_bench_evaluation/run_eval_point_matching.py"
    headline = "pooled_mean"

    def grids(self, ctx, edit: Image.Image):
        raise NotImplementedError

    def compute(self, ctx) -> MetricResult:
        from tvbench.metrics.functional import matching_distances

        edit = ctx.edit_resized(Image.BILINEAR)
        source_grid, edit_grid = self.grids(ctx, edit)
        distances = matching_distances(source_grid, edit_grid, ctx.case.points, edit.size, restricted=False,
                                       normalized=False)
        return MetricResult(float(distances.mean()), OK, extra={"points": len(ctx.case.points)})


class DragBenchMD(_DragBenchMD):
    name = "dragbench_md"
    label = "MD (DragBench, DINOv3)"
    latex = r"MD$_{\mathrm{DINOv3}}$"
    models = frozenset({"dino"})
    features = frozenset({("source", "match"), ("edit", "match")})
    summary = "pixels from each handle's full-image DINOv3 match in the edit to its target point, pooled over points"

    def grids(self, ctx, edit):
        return ctx.match_grid("source"), ctx.match_grid(edit)


class DragBenchMDDift(_DragBenchMD):
    name = "dragbench_md_dift"
    label = "MD (DragBench, DIFT)"
    latex = r"MD$_{\mathrm{DIFT}}$"
    models = frozenset({"dift"})
    summary = ("pixels from each handle's full-image DIFT (SD 2.1) match in the edit to its target point, pooled "
               "over points: DragDiffusion's original MD")

    def grids(self, ctx, edit):
        return ctx.dift_grid("source"), ctx.dift_grid(edit)


class DragBenchIF(Metric):
    name = "dragbench_if"
    label = "IF (DragBench)"
    latex = r"IF"
    higher_is_better = True
    range = (float("-inf"), 1.0)
    models = frozenset({"lpips"})
    reference = "Appendix F; DragDiffusion drag_bench_evaluation/run_eval_similarity.py"
    summary = "1 - LPIPS(AlexNet) between the source and the edit, both resized to 224 x 224 (bilinear)"

    def compute(self, ctx) -> float:
        return 1.0 - ctx.lpips.distance_at(ctx.image("source"), ctx.edit_resized(Image.BILINEAR), IF_SIZE)
