"""``tvedit-qwen`` and ``tvedit-kontext``: the diffusers editors with the TV-Edit controller attached.

Both subclass the instruction editors (``tvbench_adapters.editors``) through their extension points: the
controller is found and its layout read before any backbone loads (``check``), loaded after the pipeline
(``configure_pipeline``), follows it to the device, runs from a
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
  source is resized with the official filter (bicubic, as in training: :func:`.points.resize_image`, or the
  pipeline's own resize under :func:`.points.pipeline_filter` where the pipeline sizes the source itself, Qwen
  in keep mode), the edit is mapped back to the source's size and the points follow the pipeline's token grid.
- ``tvedit-qwen`` guidance, ``preset``:

  - ``readme`` (default): 50 steps with true CFG 3.0 and negative prompt " ". PolyU-VCLab/TVEdit README: "For
    inference without acceleration LoRA, we recommend CFG 2.5-3.5 with 50 steps"; 3.0 is the demo's slider
    default; the paper states no value. ``steps``, ``true_cfg_scale`` and ``negative_prompt`` change it.
  - ``demo``: the official demo's pipeline call (``demo/gradio_demo.py``, ``on_run``, commit a99fdef):
    ``true_cfg_scale`` = the CFG slider (default 3.0), ``num_inference_steps`` = the steps slider (default 50),
    and **no** ``negative_prompt``, which ``on_run`` passes (as " ") only when Lightning is loaded. The
    pipeline (``demo/tvedit_qwen/pipelines.py``, ``QwenImageEditPipeline.__call__``: ``do_true_cfg =
    true_cfg_scale > 1 and has_neg_prompt``; diffusers 0.42 likewise) therefore runs **without** true CFG
    whatever the slider shows: one transformer call per step, the images of ``true_cfg_scale=1``. With
    ``lightning=true`` it passes " " and the Lightning values (CFG 1.0, 4 steps: ``on_toggle_lightning``), still
    no CFG. The preset also requires ``resize=squash`` (``original_img.resize((1024, 1024))``), the default
    ``negative_prompt`` and ``conditioning_scale=1`` (the demo has neither knob); ``steps`` and
    ``true_cfg_scale`` stay settable, as the demo's sliders. Not reproduced: the demo's seed (42 on a
    ``torch.Generator`` of the GPU; tvbench seeds each case on a CPU generator).

  ``lightning=true``: the 4-step Lightning LoRA with its scheduler, 4 steps and CFG 1 ("With acceleration
  LoRA, use CFG 1 with 4 steps"; the demo's ``DISTILL_SCHEDULER_CONFIG`` equals the editor's).
- ``tvedit-kontext``: FLUX.1 Kontext's own defaults (28 steps, distilled guidance 2.5, no true CFG); no weights
  or code were published for it.

What ran is recorded per case (facts, in ``manifest.json``): ``guidance`` = ``{"preset", "true_cfg" (on or
off, as the pipeline decides it), "true_cfg_scale" (the value passed), "negative_prompt" (passed, or null),
"steps", "scheduler" (class and shift settings)}`` for Qwen, ``{"true_cfg": false, "guidance_scale", "steps",
"scheduler"}`` for Kontext, and ``setting``, its compact form: ``true CFG 3, 50 steps, FlowMatchEuler dynamic
shift``, ``demo: no CFG (3 set, no negative prompt), 50 steps, ...``, ``no CFG (1), 4 steps, FlowMatchEuler shift
3`` (Lightning), ``guidance 2.5 (distilled), 28 steps, ...`` (Kontext). The report's method column is the run's
folder (``default_run_name``): the method's name for the documented default, else with what departs from it,
e.g. ``tvedit-qwen-demo``, ``tvedit-qwen-lightning``, ``tvedit-qwen-cfg2.5-30steps``, ``tvedit-kontext-g3.5``.

Points are scaled to the working size by the official rule ``x * working / source`` (not the pixel-centre
mapping of :meth:`EditRequest.to_working`; they differ by at most half a working pixel), as the released
weights were used with it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator

from PIL import Image

from tvbench.errors import ConfigError
from tvbench_adapters.editors.base import EditRequest
from tvbench_adapters.editors.kontext import FluxKontext
from tvbench_adapters.editors.qwen import LIGHTNING_STEPS, LIGHTNING_TRUE_CFG, QwenImageEdit
from tvbench_adapters.tvedit.points import RESIZE_MODES, pipeline_filter, resize_image
from tvbench_adapters.tvedit.spec import CONTROLLER_LABEL, DEFAULT_BLOCKS, DEFAULT_INJECTIONS

RANDOM = "random"
PRESETS = ("readme", "demo")  # tvedit-qwen's guidance settings (module docstring)
# The scheduler settings that shape the sigma schedule (FlowMatchEulerDiscreteScheduler's config).
SCHEDULER_KEYS = ("shift", "use_dynamic_shifting", "base_shift", "max_shift", "base_image_seq_len",
                  "max_image_seq_len", "shift_terminal", "time_shift_type")
SCHEDULER_FLAGS = ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "invert_sigmas",
                   "stochastic_sampling")  # recorded only when on


def scheduler_record(scheduler: Any) -> dict[str, Any]:
    """The scheduler's class and the settings that shape its sigmas (floats to 6 significant digits)."""
    config = dict(getattr(scheduler, "config", {}) or {})
    record: dict[str, Any] = {"class": type(scheduler).__name__}
    for key in SCHEDULER_KEYS:
        if key in config:
            value = config[key]
            record[key] = float(f"{value:.6g}") if isinstance(value, float) else value
    record.update({flag: True for flag in SCHEDULER_FLAGS if config.get(flag)})
    return record


def scheduler_label(record: dict[str, Any]) -> str:
    """The class without ``(Discrete)Scheduler`` and its shift: ``FlowMatchEuler dynamic shift`` (resolution
    dependent, Qwen-Image-Edit's and FLUX's own) or ``FlowMatchEuler shift 3`` (a fixed one: Lightning's)."""
    name = str(record.get("class", "?")).removesuffix("Scheduler").removesuffix("Discrete")
    if record.get("use_dynamic_shifting"):
        base, top = record.get("base_shift"), record.get("max_shift")
        if base is not None and base == top:  # a constant mu: Lightning's ln 3, "shift=3" with exponential shift
            factor = math.exp(base) if record.get("time_shift_type", "exponential") == "exponential" else base
            return f"{name} shift {factor:.3g}"
        return f"{name} dynamic shift"
    return f"{name} shift {record['shift']:g}" if "shift" in record else name


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


class TVEditMixin:
    """The controller part, shared by both backbones (mixed into a ``DiffusersEditor`` dataclass)."""

    inputs = frozenset({"image", "instruction", "points"})
    # True: the pipeline picks its working size from the image it is given (Qwen-Image-Edit's
    # calculate_dimensions), so in keep mode the source goes in unchanged and the pipeline resizes it.
    pipeline_sizes_source: ClassVar[bool] = False
    backbone: ClassVar[str] = ""  # qwen | kontext: the backbone a controller file must be built for

    def _check_tvedit_options(self) -> None:
        if not self.controller.strip():
            raise ConfigError(f"method {self.name!r}: option controller is required: TV-Edit weights as a hub id, "
                              "folder or file (--set controller=...); controller=random only for tests and timing")
        if self.resize not in RESIZE_MODES:
            raise ConfigError(f"method {self.name!r}: resize={self.resize!r}; choose squash (official) or keep")
        if self.controller == RANDOM and (self.blocks < 1 or self.injections < 1):
            raise ConfigError(f"method {self.name!r}: blocks and injections must be at least 1")

    def check(self) -> None:
        """The editor's checks, then the controller: found (file, folder or hub id) and its layout read (our file's
        header, or the official pickle's two dicts), for this backbone, all before the backbone loads."""
        super().check()  # type: ignore[misc]
        if self.controller == RANDOM:
            return
        from tvbench.features.weights import require_existing

        require_existing(self.controller, CONTROLLER_LABEL)  # a mistyped path fails before torch is even imported
        from tvbench_adapters.tvedit.checkpoint import check_controller

        check_controller(self.controller, self.backbone)

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
            if controller.source.get("extra_keys"):  # an official file's ignored top-level keys (the note)
                self.controller_fact["controller_extra_keys"] = list(controller.source["extra_keys"])
        self.scheduler_fact = scheduler_record(pipe.scheduler)  # after the editor's own (Lightning's) scheduler
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
        # The official filter (the demo's PIL default, bicubic) in both modes, as in training: resized here to the
        # working size, except where the pipeline sizes the source itself (Qwen, keep), which then resizes it with
        # the same filter (pipeline_filter in calling).
        if self.resize == "keep" and self.pipeline_sizes_source:
            return source
        return resize_image(source, working_size)

    def guidance(self) -> dict[str, Any]:
        """The effective guidance of a call (the ``guidance`` fact); subclasses define it."""
        raise NotImplementedError

    def setting(self) -> str:
        """The guidance in a few words (the ``setting`` fact; the method column itself is the run name)."""
        raise NotImplementedError

    def _run_name(self, departures: list[str]) -> str:
        """The run folder's name, which is the report's method column: the method's name for its documented
        default, else with what departs from it (guidance first, then ``keep``, ``cond<scale>``, ``lora``)."""
        departures = departures + ([self.resize] if self.resize != "squash" else []) \
            + ([f"cond{self.conditioning_scale:g}"] if self.conditioning_scale != 1.0 else []) \
            + (["lora"] if self.lora else [])
        return "-".join([self.name, *departures])

    def _facts(self) -> dict[str, Any]:
        return {**self.controller_fact, "resize": self.resize, "guidance": self.guidance(), "setting": self.setting()}

    @contextlib.contextmanager
    def calling(self, request: EditRequest) -> Iterator[None]:
        with super().calling(request), pipeline_filter(self.pipe):  # type: ignore[misc]
            self.hook.set_points([list(case.points) for case in request.cases],
                                 [request.source_size] * len(request.cases))
            try:
                yield
            finally:
                self.hook.clear_points()

    def edit(self, case, *, seed):
        result = super().edit(case, seed=seed)  # type: ignore[misc]
        result.facts.update(self._facts())
        return result

    def edit_batch(self, cases, seeds):
        results = super().edit_batch(cases, seeds)  # type: ignore[misc]
        for result in results:
            if not isinstance(result, Exception):
                result.facts.update(self._facts())
        return results


@dataclass
class TVEditQwen(TVEditMixin, QwenImageEdit):
    """TV-Edit on Qwen-Image-Edit: 50 steps, true CFG 3.0 (authors' README); Lightning 4 steps, CFG 1;
    ``preset=demo``: the authors' demo call (no negative prompt, hence no true CFG)."""

    name = "tvedit-qwen"
    backbone = "qwen"
    summary = "TV-Edit controller on Qwen-Image-Edit: instruction + drag points (the paper's method)"
    inputs = frozenset({"image", "instruction", "points"})
    version = "2"  # 2: resize=keep resizes with the official filter (bicubic), no longer the pipeline's Lanczos
    pipeline_sizes_source = True
    card_true_cfg: ClassVar[float] = 3.0

    controller: str = ""
    conditioning_scale: float = 1.0
    resize: str = "squash"
    blocks: int = DEFAULT_BLOCKS  # controller=random only: the shape of the random controller
    injections: int = DEFAULT_INJECTIONS
    controller_seed: int = 0
    preset: str = "readme"  # readme (the authors' README recommendation) | demo (their demo's exact call)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_tvedit_options()
        if self.preset not in PRESETS:
            raise ConfigError(f"method {self.name!r}: preset={self.preset!r}; choose readme (true CFG 3.0, 50 steps, "
                              "negative prompt ' ') or demo (the authors' demo call: no negative prompt, no true CFG)")
        if self.preset == "demo":
            conflicts = [f"{name}={value!r}" for name, value, demo in (
                ("resize", self.resize, "squash"), ("negative_prompt", self.negative_prompt, " "),
                ("conditioning_scale", self.conditioning_scale, 1.0)) if value != demo]
            if conflicts:
                raise ConfigError(f"method {self.name!r}: preset=demo is the authors' demo call, which squashes to "
                                  "1024 x 1024, passes negative prompt ' ' only with Lightning and scales no "
                                  f"residual; drop {', '.join(conflicts)}")

    def negative_prompt_passed(self) -> str | None:
        """The negative prompt the pipeline gets, or None. The demo's ``on_run`` passes " " with Lightning only;
        otherwise (the editor) it is passed exactly when true CFG can use it (scale > 1)."""
        if self.preset == "demo":
            return self.negative_prompt if self.lightning else None
        return self.negative_prompt if self.cfg_scale() > 1 else None

    def call_arguments(self, request: EditRequest) -> dict[str, Any]:
        kwargs = super().call_arguments(request)
        kwargs.pop("negative_prompt", None)
        negative = self.negative_prompt_passed()
        if negative is not None:
            kwargs["negative_prompt"] = [negative] * len(request.cases) if self.max_batch_size > 1 else negative
        return kwargs

    def guidance(self) -> dict[str, Any]:
        scale, negative = self.cfg_scale(), self.negative_prompt_passed()
        return {"preset": self.preset, "true_cfg": scale > 1 and negative is not None,  # the pipeline's do_true_cfg
                "true_cfg_scale": scale, "negative_prompt": negative, "steps": self.inference_steps(),
                "scheduler": self.scheduler_fact}

    def default_run_name(self) -> str:
        """``tvedit-qwen`` for the documented default; e.g. ``tvedit-qwen-demo``, ``tvedit-qwen-lightning``,
        ``tvedit-qwen-cfg2.5-30steps``, ``tvedit-qwen-negprompt`` otherwise (preset and Lightning defaults count as
        defaults: ``preset=demo`` is ``tvedit-qwen-demo``)."""
        scale, steps = self.cfg_scale(), self.inference_steps()
        departures = (["demo"] if self.preset == "demo" else []) + (["lightning"] if self.lightning else []) \
            + ([f"cfg{scale:g}"] if scale != (LIGHTNING_TRUE_CFG if self.lightning else self.card_true_cfg) else []) \
            + ([f"{steps}steps"] if steps != (LIGHTNING_STEPS if self.lightning else self.card_steps) else []) \
            + (["negprompt"] if self.negative_prompt != " " else [])
        return self._run_name(departures)

    def setting(self) -> str:
        guidance = self.guidance()
        scale = guidance["true_cfg_scale"]
        if guidance["true_cfg"]:
            cfg = f"true CFG {scale:g}"
        elif scale > 1:
            cfg = f"no CFG ({scale:g} set, no negative prompt)"
        else:
            cfg = f"no CFG ({scale:g})"
        text = f"{cfg}, {guidance['steps']} steps, {scheduler_label(self.scheduler_fact)}"
        return f"demo: {text}" if self.preset == "demo" else text


@dataclass
class TVEditKontext(TVEditMixin, FluxKontext):
    """TV-Edit on FLUX.1 Kontext [dev]: the editor's 28 steps and guidance 2.5; our controller design."""

    name = "tvedit-kontext"
    backbone = "kontext"
    summary = ("TV-Edit controller on FLUX.1 Kontext [dev]: instruction + drag points; weights under the FLUX.1 "
               "[dev] Non-Commercial License")
    inputs = frozenset({"image", "instruction", "points"})
    version = "2"  # 2: resize=keep resizes with the official filter (bicubic), no longer the editor's Lanczos

    controller: str = ""
    conditioning_scale: float = 1.0
    resize: str = "squash"
    blocks: int = DEFAULT_BLOCKS
    injections: int = DEFAULT_INJECTIONS
    controller_seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_tvedit_options()

    def guidance(self) -> dict[str, Any]:
        # distilled guidance: the transformer's guidance embedding, one transformer call a step
        return {"true_cfg": False, "guidance_scale": self.guidance_scale, "steps": self.inference_steps(),
                "scheduler": self.scheduler_fact}

    def default_run_name(self) -> str:
        """``tvedit-kontext`` for the editor's defaults; e.g. ``tvedit-kontext-g3.5-20steps`` otherwise."""
        default = {f.name: f.default for f in dataclasses.fields(FluxKontext)}
        departures = ([f"g{self.guidance_scale:g}"] if self.guidance_scale != default["guidance_scale"] else []) \
            + ([f"{self.steps}steps"] if self.steps != default["steps"] else [])
        return self._run_name(departures)

    def setting(self) -> str:
        return (f"guidance {self.guidance_scale:g} (distilled), {self.inference_steps()} steps, "
                f"{scheduler_label(self.scheduler_fact)}")

    def working_size(self, width: int, height: int) -> tuple[int, int]:
        if self.resize == "keep":
            return FluxKontext.working_size(self, width, height)
        side = int(math.sqrt(self.working_area)) // 16 * 16  # the square of the working area, multiples of 16
        return side, side
