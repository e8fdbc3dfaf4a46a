"""``tvedit-qwen`` and ``tvedit-kontext``: the diffusers editors with the TV-Edit controller attached.

Both subclass the instruction editors (``tvbench_adapters.editors``) through their extension points: the
controller is loaded after the pipeline (``configure_pipeline``), follows it to the device, runs from a
forward pre-hook on the transformer (:class:`~.attach.ControllerHook`) and gets each call's drag points in
``calling``. Inputs: image, instruction and points (Table 1's T+I).

Options (``--set key=value``):

- ``controller``: the TV-Edit weights, a Hugging Face id ``org/name[@revision]``, a local folder or a file
  (the authors' pickle or our ``controller.safetensors``). Required: without it the method refuses to set
  up. ``controller=random`` builds a randomly initialised controller (``blocks``, ``injections``,
  ``controller_seed``) for tests and timing only; its edits are the backbone's, nudged by noise.
- ``conditioning_scale`` (1.0): multiplies every residual.
- ``resize``: ``squash`` (default; the authors' demo resizes every source to a square of the working area,
  1024 x 1024, aspect not kept) or ``keep`` (the editor's own aspect-keeping working size). Either way the
  edit is mapped back to the source's size and the points follow the pipeline's token grid.
- ``tvedit-qwen`` steps and CFG: 50 steps with true CFG 3.0 and negative prompt " " (PolyU-VCLab/TVEdit
  README: "we recommend CFG 2.5-3.5 with 50 steps"; 3.0 is its demo's default); ``lightning=true``: the
  4-step Lightning LoRA with its scheduler, 4 steps and CFG 1 ("With acceleration LoRA, use CFG 1 with 4
  steps"; the demo's scheduler config equals the editor's). Note: the authors' demo passes a negative prompt
  only with Lightning, so its 50-step mode runs without CFG whatever the slider says; ``true_cfg_scale=1``
  reproduces that.
- ``tvedit-kontext``: FLUX.1 Kontext's own defaults (28 steps, guidance 2.5); no weights were published.

Points are scaled to the working size by the official rule ``x * working / source`` (not the pixel-centre
mapping of :meth:`EditRequest.to_working`; they differ by at most half a working pixel), as the released
weights were used with it.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator

from PIL import Image

from tvbench.errors import ConfigError
from tvbench_adapters.editors.base import EditRequest
from tvbench_adapters.editors.kontext import FluxKontext
from tvbench_adapters.editors.qwen import QwenImageEdit
from tvbench_adapters.tvedit.points import RESIZE_MODES
from tvbench_adapters.tvedit.spec import DEFAULT_BLOCKS, DEFAULT_INJECTIONS

RANDOM = "random"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


class TVEditMixin:
    """The controller part, shared by both backbones (mixed into a ``DiffusersEditor`` dataclass)."""

    inputs = frozenset({"image", "instruction", "points"})

    def _check_tvedit_options(self) -> None:
        if not self.controller.strip():
            raise ConfigError(f"method {self.name!r}: option controller is required: TV-Edit weights as a hub id, "
                              "folder or file (--set controller=...); controller=random only for tests and timing")
        if self.resize not in RESIZE_MODES:
            raise ConfigError(f"method {self.name!r}: resize={self.resize!r}; choose squash (official) or keep")
        if self.controller == RANDOM and (self.blocks < 1 or self.injections < 1):
            raise ConfigError(f"method {self.name!r}: blocks and injections must be at least 1")

    def configure_pipeline(self, pipe: Any) -> None:
        super().configure_pipeline(pipe)  # type: ignore[misc]
        import torch

        from tvbench_adapters.tvedit.attach import ControllerHook
        from tvbench_adapters.tvedit.checkpoint import load_controller
        from tvbench_adapters.tvedit.controller import build_controller
        from tvbench_adapters.tvedit.spec import ControllerSpec

        dtype = next(pipe.transformer.parameters()).dtype
        if self.controller == RANDOM:
            spec = ControllerSpec.for_transformer(pipe.transformer, blocks=self.blocks, injections=self.injections)
            with torch.random.fork_rng(devices=[]):  # the caller's random state is left alone
                torch.manual_seed(self.controller_seed)
                controller = build_controller(spec, dtype=dtype)
            self.controller_fact = {"controller": RANDOM, "seed": self.controller_seed}
        else:
            controller = load_controller(self.controller, pipe.transformer, dtype=dtype)
            path = Path(controller.source["path"])
            self.controller_fact = {"controller": controller.source["format"], "sha256": _file_digest(path)}
        self.tvedit = controller.eval()
        self.hook = ControllerHook(pipe.transformer, controller, conditioning_scale=self.conditioning_scale)
        self.add_transformer_hook(self.hook)

    def place_pipeline(self, pipe: Any) -> None:
        super().place_pipeline(pipe)  # type: ignore[misc]
        self.tvedit.to(self.runtime.device)  # under offload the hook keeps it beside the latents

    def teardown(self) -> None:
        super().teardown()  # type: ignore[misc]
        self.tvedit = self.hook = None

    def working_size(self, width: int, height: int) -> tuple[int, int]:
        if self.resize == "keep":
            return super().working_size(width, height)  # type: ignore[misc]
        return super().working_size(1, 1)  # type: ignore[misc]  # the square of the working area

    def prepare_image(self, source: Image.Image, working_size: tuple[int, int]) -> Image.Image:
        if self.resize == "squash" and source.size != working_size:
            return source.resize(working_size, Image.Resampling.BICUBIC)  # as the official demo (PIL's default)
        return super().prepare_image(source, working_size)  # type: ignore[misc]

    @contextlib.contextmanager
    def calling(self, request: EditRequest) -> Iterator[None]:
        with super().calling(request):  # type: ignore[misc]
            self.hook.set_points([list(case.points) for case in request.cases],
                                 [request.source_size] * len(request.cases))
            try:
                yield
            finally:
                self.hook.clear_points()

    def edit(self, case, *, seed):
        result = super().edit(case, seed=seed)  # type: ignore[misc]
        result.facts.update(self.controller_fact, resize=self.resize)
        return result

    def edit_batch(self, cases, seeds):
        results = super().edit_batch(cases, seeds)  # type: ignore[misc]
        for result in results:
            if not isinstance(result, Exception):
                result.facts.update(self.controller_fact, resize=self.resize)
        return results


@dataclass
class TVEditQwen(TVEditMixin, QwenImageEdit):
    """TV-Edit on Qwen-Image-Edit: 50 steps, true CFG 3.0 (authors' README and demo); Lightning 4 steps, CFG 1."""

    name = "tvedit-qwen"
    summary = "TV-Edit controller on Qwen-Image-Edit: instruction + drag points (the paper's method)"
    inputs = frozenset({"image", "instruction", "points"})
    card_true_cfg: ClassVar[float] = 3.0

    controller: str = ""
    conditioning_scale: float = 1.0
    resize: str = "squash"
    blocks: int = DEFAULT_BLOCKS  # controller=random only: the shape of the random controller
    injections: int = DEFAULT_INJECTIONS
    controller_seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_tvedit_options()


@dataclass
class TVEditKontext(TVEditMixin, FluxKontext):
    """TV-Edit on FLUX.1 Kontext [dev]: the editor's 28 steps and guidance 2.5; our controller design."""

    name = "tvedit-kontext"
    summary = ("TV-Edit controller on FLUX.1 Kontext [dev]: instruction + drag points; weights under the FLUX.1 "
               "[dev] Non-Commercial License")
    inputs = frozenset({"image", "instruction", "points"})

    controller: str = ""
    conditioning_scale: float = 1.0
    resize: str = "squash"
    blocks: int = DEFAULT_BLOCKS
    injections: int = DEFAULT_INJECTIONS
    controller_seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_tvedit_options()

    def working_size(self, width: int, height: int) -> tuple[int, int]:
        if self.resize == "keep":
            return FluxKontext.working_size(self, width, height)
        side = int(math.sqrt(self.working_area)) // 16 * 16  # the square of the working area, multiples of 16
        return side, side
