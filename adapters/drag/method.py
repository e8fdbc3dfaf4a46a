"""What every native drag method does around its own drag: load, LoRA, inversion, decoding, mapping back, facts.

A case goes through: the source resized to the working size, ``resolution`` wide (:mod:`.geometry`; DragBench's
512-wide images as they are); the identity LoRA trained or loaded from the cache (:mod:`.lora`); DDIM inversion of
its latent to ``round(inversion_strength * n_steps)`` steps; the method's drag and denoising
(:meth:`DiffusionDragMethod.drag_and_denoise`); decoding (``8 * (h // 8)`` rows, as the VAE gives) and a bilinear
resize to the source's size. The manifest gets, per case: ``work_size`` (what entered the VAE), ``native_size``
(what the VAE decoded), ``precision`` (weights and the drag loop's autocast, as run), ``drag_iterations``,
``handles_reached`` (every handle tracked to within 2 supervision cells of its target), ``final_handles`` (source
pixels), ``lora`` (``trained``, ``cached`` or ``off``), ``lora_key`` and ``phases`` (seconds of ``lora`` when
trained, ``inversion``, ``drag``, ``denoise``).

The case's seed is not used: every step is deterministic (the LoRA draws from its own fixed seed, as the original's
``set_seed(0)``), so a rerun reproduces the images. Heavy imports (torch, diffusers, peft) happen in :meth:`setup`
and below, never when ``tvbench ls`` imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

from PIL import Image

from tvbench.cases import Case
from tvbench.errors import CaseError, ConfigError
from tvbench.methods.base import EditResult, Method

from .engine import DEFAULT_MODEL
from .geometry import DragGeometry
from .precision import AUTOCAST_CHOICES, DragPrecision
from .timing import PhaseTimer

if TYPE_CHECKING:
    import torch

    from .engine import DragEngine
    from .motion import Point
    from .schedule import DdimSchedule

@dataclass
class DragContext:
    """One case, ready to drag: inverted latent, prompt embedding, points and mask on the model's grids."""

    engine: "DragEngine"
    schedule: "DdimSchedule"
    geometry: DragGeometry
    text: "torch.Tensor"
    latent: "torch.Tensor"  # the inverted latent z_t, float32 (1, 4, h, w)
    start: int  # index of t in schedule.timesteps
    handles: list["Point"]
    targets: list["Point"]
    mask: "torch.Tensor | None"  # (1, 1, h, w) at latent resolution, 1 = may change; None: no mask term
    timer: PhaseTimer
    case: Case
    feature_block: int  # index of the up block whose output is the feature map
    precision: DragPrecision = field(default_factory=DragPrecision)  # the drag loop's autocast and loss scaling

    def features(self, latent: "torch.Tensor", t: int) -> tuple["torch.Tensor", "torch.Tensor"]:
        """Predicted noise and the supervision features of ``latent`` at timestep ``t``."""
        return self.engine.eps_and_features(latent, t, self.text, self.feature_block, self.geometry.supervision_size)

    @property
    def t(self) -> int:
        return self.schedule.timesteps[self.start]

    @property
    def remaining_steps(self) -> range:
        return range(self.start, self.schedule.n_steps)


@dataclass
class DragOutcome:
    latent: "torch.Tensor"  # the edited, fully denoised latent (1, 4, h, w)
    iterations: int
    handles: list["Point"]
    reached: bool
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class DiffusionDragMethod(Method):
    """Options shared by the native drag methods; defaults are DragDiffusion's (each subclass cites its own).

    DragDiffusion's defaults (``drag_ui.py`` and ``drag_bench_evaluation/run_drag_diffusion.py`` of
    Yujun-Shi/DragDiffusion): base model ``runwayml/stable-diffusion-v1-5`` (now
    ``stable-diffusion-v1-5/stable-diffusion-v1-5``), 50 DDIM steps, inversion strength 0.7, LoRA rank 16 for 80
    steps at 5e-4 with batch 4, features of ``up_blocks[2]`` (``unet_feature_idx = 3``; written ``-2``, the
    second-to-last up block, so UNets with fewer levels work too).
    """

    inputs: ClassVar[frozenset[str]] = frozenset({"image", "mask", "points", "caption"})
    uses_dtype: ClassVar[bool] = True
    default_dtype: ClassVar[str | None] = "float32"  # the originals' weights on every device (:mod:`.precision`)
    regularize_without_mask: ClassVar[bool] = False  # True: a case without a mask keeps *everything* (official code)
    grad_scaler: ClassVar[bool] = True  # the drag loss is scaled (torch.amp.GradScaler) while autocasting float16

    model: str = DEFAULT_MODEL  # hub id (org/name[@revision]) or a local save_pretrained folder
    resolution: int = 512  # width of the working image (multiple of 8); the height keeps the aspect ratio
    n_steps: int = 50  # DDIM steps of the full schedule
    inversion_strength: float = 0.7  # fraction of the schedule inverted (35 of 50 steps)
    lora_steps: int = 80  # identity LoRA fine-tuning steps (0: no LoRA)
    lora_lr: float = 5e-4
    lora_rank: int = 16
    lora_batch_size: int = 4
    lr: float = 0.01  # Adam learning rate of the drag optimisation
    lam: float = 0.1  # weight of the term keeping the unmasked region unchanged
    feature_block: int = -2  # up block giving the feature map, from the end if negative (SD 1.5: up_blocks[2])
    drag_autocast: str = "float16"  # the drag loop's autocast on CUDA over float32 weights (float16|bfloat16|off)

    def __post_init__(self) -> None:
        if self.resolution < 8 or self.resolution % 8:
            raise ValueError(f"resolution must be a positive multiple of 8, got {self.resolution}")
        if self.n_steps < 1 or not 0 < self.inversion_strength <= 1:
            raise ValueError("n_steps must be at least 1 and inversion_strength in (0, 1]")
        if round(self.inversion_strength * self.n_steps) < 1:
            raise ValueError(f"inversion_strength {self.inversion_strength} of {self.n_steps} steps inverts no step")
        if self.lr <= 0:
            raise ValueError("lr must be positive")
        if self.drag_autocast not in AUTOCAST_CHOICES:
            raise ValueError(f"drag_autocast must be one of {', '.join(AUTOCAST_CHOICES)}, got {self.drag_autocast!r}")
        negative = [f.name for f in fields(self) if type(getattr(self, f.name)) in (int, float)
                    and getattr(self, f.name) < 0 and f.name != "feature_block"]
        if negative:
            raise ValueError(f"options must not be negative: {', '.join(negative)}")
        self._engine: "DragEngine | None" = None
        self._lora = None
        self._schedule: "DdimSchedule | None" = None
        self._feature_index = 0

    # -- what a subclass provides ---------------------------------------------------------------------------

    def precision(self) -> DragPrecision:
        return DragPrecision(self.drag_autocast, self.grad_scaler)

    def vae_spec(self) -> str:
        """A separate VAE to load instead of the pipeline's ('' = the pipeline's own)."""
        return ""

    def prompt(self, case: Case) -> str:
        """The text condition of the UNet (and of the LoRA): the case's caption, as DragBench's scripts pass it."""
        return case.caption or ""

    def drag_and_denoise(self, ctx: DragContext) -> DragOutcome:
        raise NotImplementedError

    # -- the run --------------------------------------------------------------------------------------------

    def setup(self) -> None:
        from .engine import DragEngine
        from .lora import IdentityLora, LoraRecipe
        from .schedule import DdimSchedule

        self._engine = DragEngine.load(self.model, vae=self.vae_spec(), device=self.runtime.device,
                                       dtype=self.runtime.dtype or "float32")
        recipe = LoraRecipe(steps=self.lora_steps, lr=self.lora_lr, rank=self.lora_rank,
                            batch_size=self.lora_batch_size, resolution=self.resolution)
        self._lora = IdentityLora(self._engine, recipe)
        count = len(self._engine.unet.up_blocks)
        self._feature_index = self.feature_block + count if self.feature_block < 0 else self.feature_block
        if not 0 <= self._feature_index < count:
            raise ConfigError(f"{self.name}: feature_block={self.feature_block}, but the UNet has {count} up blocks")
        try:
            self._schedule = DdimSchedule(self._engine.scheduler, self.n_steps)
        except ValueError as exc:
            raise ConfigError(f"{self.name} with {self.model}: {exc}") from None

    def teardown(self) -> None:
        self._engine = self._lora = self._schedule = None

    def edit(self, case: Case, *, seed: int) -> EditResult:
        import torch

        engine, schedule = self._engine, self._schedule
        if engine is None:
            raise RuntimeError(f"{self.name}: setup() was not called")
        if not case.points:
            raise CaseError(case.id, "points", f"{self.name} drags points and this case has none")
        source = case.open_image("source")
        geometry = DragGeometry.of(*source.size, self.resolution)
        work = source if geometry.work_size == source.size else source.resize(geometry.work_size, Image.BILINEAR)
        prompt = self.prompt(case)
        timer = PhaseTimer(self.runtime.device)
        with timer.phase("lora"):
            lora_status, lora_key = self._lora.apply(work, prompt)
        if lora_status != "trained":
            timer.drop("lora")
        text = engine.text_embedding(prompt)
        with timer.phase("inversion"):
            latent = engine.invert(engine.encode(work), text, schedule, self.inversion_strength)
        handles, targets = geometry.handles_and_targets(case.points)
        ctx = DragContext(engine=engine, schedule=schedule, geometry=geometry, text=text, latent=latent,
                          start=schedule.start_index(self.inversion_strength), handles=handles, targets=targets,
                          mask=self._latent_mask(case, geometry, latent.shape[-2:]), timer=timer, case=case,
                          feature_block=self._feature_index, precision=self.precision())
        outcome = self.drag_and_denoise(ctx)
        with timer.phase("denoise"), torch.no_grad():
            decoded = engine.decode(outcome.latent)
            image = self._to_source_size(decoded, source.size)
        facts = {"work_size": list(geometry.work_size), "native_size": [decoded.shape[-1], decoded.shape[-2]],
                 "precision": self.precision().describe(engine), "drag_iterations": outcome.iterations,
                 "handles_reached": outcome.reached,
                 "final_handles": [[round(v, 2) for v in geometry.to_source(*h)] for h in outcome.handles],
                 "lora": lora_status, "lora_key": lora_key[:16] if lora_key else None, **outcome.facts,
                 "phases": timer.rounded()}
        return EditResult(image, facts=facts)

    def _latent_mask(self, case: Case, geometry: DragGeometry,
                     latent_size: tuple[int, int]) -> "torch.Tensor | None":
        """The editable region at latent resolution via the supervision grid, both nearest (as the original)."""
        import torch
        import torch.nn.functional as F

        engine = self._engine
        rows, cols = latent_size
        if case.mask_source is None:
            if not self.regularize_without_mask:
                return None
            return torch.zeros((1, 1, rows, cols), device=engine.device)
        mask = torch.from_numpy(case.open_mask("mask_source").astype("float32"))[None, None]
        mask = F.interpolate(mask, geometry.supervision_size, mode="nearest")
        mask = F.interpolate(mask, (rows, cols), mode="nearest").to(engine.device)
        if not self.regularize_without_mask and not mask.any():
            return None  # DragDiffusion: `using_mask = interp_mask.sum() != 0`
        return mask

    @staticmethod
    def _to_source_size(images: "torch.Tensor", size: tuple[int, int]) -> Image.Image:
        """Bilinear resize to the source's ``(w, h)`` and truncation to uint8, as the official scripts save."""
        import torch.nn.functional as F

        if images.shape[-1] != size[0] or images.shape[-2] != size[1]:
            images = F.interpolate(images, (size[1], size[0]), mode="bilinear")
        array = (images[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy() * 255).astype("uint8")
        return Image.fromarray(array)
