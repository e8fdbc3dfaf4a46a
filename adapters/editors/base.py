"""What every diffusers instruction editor shares: loading, placement, seeds, sizes, facts, teardown.

A concrete editor (``qwen.py``, ``kontext.py``, ``longcat.py``) names its pipeline class and default weights
and says how to call the pipeline (:meth:`DiffusersEditor.call_arguments`). This base does the rest:

- **Weights** (option ``model``): a Hugging Face id (``org/name`` or ``org/name@revision``) or a local folder
  in the diffusers layout. Hub ids resolve through the HF cache first (``HF_HOME``), honour ``HF_TOKEN`` and
  ``HF_HUB_OFFLINE``, and fetch only the per-component files (never the single-file checkpoints some repos
  also hold). A missing folder, an uncached id offline, a gated or unknown repo: one line with the fix.
- **Device and precision** from the run (``--device``, ``--dtype``: bfloat16 on CUDA by default, float32 on
  CPU); option ``offload`` (``none``, ``model``, ``sequential``: diffusers' CPU offload) is a runtime option:
  it changes memory and speed, not the images, so it stays out of the run's identity.
- **Seeds**: one CPU ``torch.Generator`` per case, seeded with the case's own seed, so the noise of a case is
  the same alone, in a batch, in a shard, in a rerun and on any device.
- **Sizes**: the pipelines work at about one megapixel (option ``working_area``, see ``sizing.py``) and
  return that size; the edit is resized back to the source's size (Lanczos) and the native size recorded.
- **Facts** per case: ``native_size`` [w, h], ``steps``, ``phases`` (seconds of ``encode`` = prompt and
  image encoding, ``denoise`` = the transformer steps, ``decode`` = VAE decode and post-processing, shared
  out over the cases of a batch), and ``weights`` (hub commit, or ``local``).
- **Teardown** drops the pipeline and every hook this editor put on it.

Extension points (the TV-Edit controller subclasses the Qwen and Kontext editors through them):

- :meth:`configure_pipeline` runs once after loading (before the pipeline moves to the device): call
  ``super()`` first, then e.g. ``self.add_transformer_hook(fn)`` to register a forward pre-hook on
  ``pipe.transformer`` (``with_kwargs=True``: the hook sees and may replace ``hidden_states``,
  ``timestep``, ``encoder_hidden_states``, ``img_shapes``, ... and may set ``controlnet_block_samples``);
  hooks added this way are removed at teardown.
- :meth:`calling` is a context manager around each pipeline call, given the :class:`EditRequest` (the cases
  as the method sees them, with ``points`` when the subclass declares them in ``inputs``, their seeds, the
  source and working sizes, and :meth:`EditRequest.to_working` to map source pixels to working pixels):
  set the per-call state your hook reads there.
- :meth:`call_arguments` builds the pipeline's keyword arguments: extend the dict ``super()`` returns.
- Options are dataclass fields: a ``@dataclass`` subclass adds its own with defaults.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Hashable, Iterator, Sequence

from PIL import Image

from tvbench.cases import Case
from tvbench.errors import CaseError, ConfigError, UnavailableError, WeightsUnavailable, one_line
from tvbench.methods.base import EditResult, Method, at_source_size, runtime_option
from tvbench_adapters.editors.lora import check_lora_file
from tvbench_adapters.editors.sizing import NATIVE_AREA, area_dimensions, check_area, working_area

OFFLOAD_MODES = ("none", "model", "sequential")
# Only what from_pretrained reads: the index and each component's configs, weights and tokenizer files, never
# the single-file checkpoints at a repository's root (FLUX.1-Kontext-dev keeps a 24 GB one there).
PIPELINE_PATTERNS = ("model_index.json", "*/*.json", "*/*.safetensors", "*/*.txt", "*/*.model", "*/*.jinja")


@dataclass
class EditRequest:
    """One pipeline call: cases of equal source size, their seeds and what goes into the pipeline."""

    cases: list[Case]
    seeds: list[int]
    sources: list[Image.Image]
    source_size: tuple[int, int]  # (w, h), the same for every case of the call
    working_size: tuple[int, int]  # (w, h) the pipeline works and answers at
    images: list[Image.Image]  # what is passed as the pipeline's ``image``
    generators: list[Any]  # one CPU torch.Generator per case

    @property
    def prompts(self) -> list[str]:
        return [case.instruction or "" for case in self.cases]

    def to_working(self, x: float, y: float) -> tuple[float, float]:
        """Source pixel coordinates (pixel centres at integers) -> working-size pixel coordinates."""
        (sw, sh), (ww, wh) = self.source_size, self.working_size
        return (x + 0.5) * ww / sw - 0.5, (y + 0.5) * wh / sh - 0.5


@dataclass
class DiffusersEditor(Method):
    """Base of the diffusers instruction editors (image + instruction in, edited image out)."""

    inputs = frozenset({"image", "instruction"})
    uses_dtype = True
    pipeline_class: ClassVar[str] = ""  # diffusers class name, e.g. "QwenImageEditPipeline"
    # The diffusers module whose calculate_dimensions fixes the working area (Qwen, LongCat); see sizing.py.
    area_module: ClassVar[str] = ""
    licence: ClassVar[str] = ""  # of the default weights, for summaries and errors

    model: str = ""  # hub id (org/name[@revision]) or local folder; subclasses set the card's id
    working_area: int = NATIVE_AREA  # pixels of the working size (aspect of the source); 1024^2 as the cards
    offload: str = runtime_option("none")  # none | model | sequential (diffusers' CPU offload; GPU only)
    oom_hint = "--set offload=model (or sequential)"
    steps: int | None = None  # denoising steps; subclasses set the card's value (None: resolved per setting)

    def __post_init__(self) -> None:
        if self.offload not in OFFLOAD_MODES:
            raise ConfigError(f"method {self.name!r}: offload={self.offload!r}; choose none, model or sequential")
        check_area(self.working_area, self.name)
        if not self.model.strip():
            raise ConfigError(f"method {self.name!r}: option model is empty; give a hub id or a local folder")
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"method {self.name!r}: steps must be at least 1, got {self.steps}")
        self.pipe: Any = None
        self.weights_revision = ""
        self._hooks: list[Any] = []

    # ------------------------------------------------------------------------------------------ loading

    def check(self) -> None:
        """Before any pipeline loads: a local ``model`` folder exists and holds this pipeline, and every LoRA file
        resolves to safetensors holding LoRA matrices (hub ids of the pipeline are looked up at set-up, where they
        may download tens of gigabytes)."""
        from tvbench.features.weights import require_existing

        require_existing(self.model, self.weights_label())
        if Path(os.path.expanduser(self.model)).exists():
            self.resolve_model()
        for option, spec, what in self.lora_files():
            try:
                check_lora_file(spec, what)
            except WeightsUnavailable as exc:
                exc.option = f"--set {option}=PATH"
                raise

    def lora_files(self) -> list[tuple[str, str, str]]:
        """The LoRA files set-up will load, as (option that replaces it, spec, name in errors); checked first."""
        return []

    def setup(self) -> None:
        """Load, configure and place the pipeline (failures become one line in :func:`setup_method`)."""
        pipe = self.load_pipeline()
        self.pipe = pipe
        self.configure_pipeline(pipe)
        self.place_pipeline(pipe)

    def weights_label(self) -> str:
        return f"{self.pipeline_class} weights"

    def resolve_model(self) -> Any:
        """The folder ``model`` names (a hub id through the cache, else downloaded), checked to hold this pipeline."""
        from tvbench.features.weights import resolve_weights

        weights = resolve_weights(self.model, what=self.weights_label(), marker="model_index.json",
                                  patterns=PIPELINE_PATTERNS, fingerprint=False)
        self._check_folder(weights.path)
        return weights

    def load_pipeline(self) -> Any:
        """``<pipeline_class>.from_pretrained`` on the resolved folder, in the run's dtype (still on the CPU)."""
        from tvbench.device import torch_dtype

        weights = self.resolve_model()
        import diffusers  # after the weights are found: a wrong path fails in a second, not after the import

        from tvbench.progress import silence_library_progress

        silence_library_progress()

        cls = getattr(diffusers, self.pipeline_class, None)
        if cls is None:
            raise UnavailableError(f"diffusers {diffusers.__version__} has no {self.pipeline_class}; "
                                   'pip install "diffusers>=0.37"')
        try:
            # Newer diffusers rename torch_dtype to dtype (with a FutureWarning); 0.37 knows only torch_dtype.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
                pipe = cls.from_pretrained(str(weights.path), torch_dtype=torch_dtype(self.runtime.dtype or "float32"))
        except (OSError, ValueError, KeyError) as exc:
            raise UnavailableError(f"cannot load {self.model} as {self.pipeline_class} ({one_line(exc)}); "
                                   "check that the folder holds a complete diffusers pipeline") from None
        self.weights_revision = weights.revision
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def _check_folder(self, folder: Any) -> None:
        try:
            declared = json.loads((folder / "model_index.json").read_text()).get("_class_name")
        except (OSError, ValueError, AttributeError):
            raise UnavailableError(f"{folder}/model_index.json is unreadable") from None
        if declared != self.pipeline_class:
            raise ConfigError(f"{self.model} holds a {declared}, not a {self.pipeline_class}; pass the weights "
                              f"this method is for (default {type(self).model_default()})")

    @classmethod
    def model_default(cls) -> str:
        return next(f.default for f in dataclasses.fields(cls) if f.name == "model")

    def configure_pipeline(self, pipe: Any) -> None:
        """After loading, before placement: LoRA adapters, schedulers, hooks (subclasses call super first)."""

    def place_pipeline(self, pipe: Any) -> None:
        device = self.runtime.device
        if self.offload == "none":
            pipe.to(device)
            return
        if not device.startswith("cuda"):
            raise ConfigError(f"offload={self.offload} needs a CUDA device (this run uses {device}); "
                              "use --set offload=none")
        if self.offload == "model":
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.enable_sequential_cpu_offload(device=device)

    def add_transformer_hook(self, hook: Callable[..., Any], *, pre: bool = True, with_kwargs: bool = True) -> Any:
        """Register a forward (pre-)hook on ``pipe.transformer``; it is removed at teardown."""
        transformer = self.pipe.transformer
        if pre:
            handle = transformer.register_forward_pre_hook(hook, with_kwargs=with_kwargs)
        else:
            handle = transformer.register_forward_hook(hook, with_kwargs=with_kwargs)
        self._hooks.append(handle)
        return handle

    def teardown(self) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()
        if self.pipe is not None and self.offload != "none":
            self.pipe.remove_all_hooks()  # accelerate's offload hooks hold the modules
        self.pipe = None

    # ------------------------------------------------------------------------------------------ editing

    def working_size(self, width: int, height: int) -> tuple[int, int]:
        """The size the pipeline works and answers at for a ``width x height`` source."""
        return area_dimensions(importlib.import_module(self.area_module), self.working_area, width, height)

    def batch_key(self, case: Case) -> Hashable:
        """Sources of one size share a batch (one working size per pipeline call); reads the header only."""
        ref = case.image("source")
        with Image.open(io.BytesIO(ref.read_bytes())) as image:
            return image.size

    def prepare_image(self, source: Image.Image, working_size: tuple[int, int]) -> Image.Image:
        """What the pipeline gets as ``image`` (the source; the pipelines resize it themselves)."""
        return source

    @contextlib.contextmanager
    def calling(self, request: EditRequest) -> Iterator[None]:
        """Around each pipeline call: subclasses set per-call state (their hooks read it) here."""
        yield

    def call_arguments(self, request: EditRequest) -> dict[str, Any]:
        """Keyword arguments of the pipeline call (subclasses extend the dict)."""
        batched = self.max_batch_size > 1
        return {"image": request.images if batched else request.images[0],
                "prompt": request.prompts if batched else request.prompts[0],
                "generator": request.generators if batched else request.generators[0],
                "num_inference_steps": self.inference_steps(), "output_type": "pil"}

    def inference_steps(self) -> int:
        """Denoising steps of a call (subclasses whose ``steps`` may be None resolve the default)."""
        if self.steps is None:
            raise NotImplementedError(f"{type(self).__name__} must resolve steps=None to its card's default")
        return self.steps

    def pipeline_context(self) -> contextlib.AbstractContextManager:
        """The scoped setting a pipeline call needs: the working area of the Qwen and LongCat pipelines."""
        if not self.area_module:
            return contextlib.nullcontext()
        return working_area(self.working_area, importlib.import_module(self.area_module))

    def edit(self, case: Case, *, seed: int) -> EditResult:
        return self._edit([case], [seed])[0]

    def edit_batch(self, cases: Sequence[Case], seeds: Sequence[int]) -> list[EditResult | Exception]:
        return list(self._edit(list(cases), list(seeds)))

    def make_request(self, cases: list[Case], seeds: list[int]) -> EditRequest:
        import torch

        for case in cases:
            if not (case.instruction or "").strip():
                raise CaseError(case.id, "instruction", f"missing; {self.name} edits by instruction")
        sources = [case.open_image("source") for case in cases]
        sizes = {source.size for source in sources}
        if len(sizes) != 1:
            raise ValueError(f"one pipeline call needs sources of one size, got {sorted(sizes)}")
        source_size = sources[0].size
        working = self.working_size(*source_size)
        return EditRequest(cases=cases, seeds=seeds, sources=sources, source_size=source_size, working_size=working,
                           images=[self.prepare_image(source, working) for source in sources],
                           generators=[torch.Generator("cpu").manual_seed(int(seed)) for seed in seeds])

    def _edit(self, cases: list[Case], seeds: list[int]) -> list[EditResult]:
        import torch

        if self.pipe is None:
            raise UnavailableError(f"method {self.name!r} is not set up (call setup() first)")
        request = self.make_request(cases, seeds)
        kwargs = self.call_arguments(request)
        clock = _PhaseClock(self.runtime.device)
        out_of_memory = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
        try:
            with self.pipeline_context(), self.calling(request), clock.watch(self.pipe):  # __call__ is no_grad
                output = self.pipe(**kwargs)
        except out_of_memory:
            raise UnavailableError(f"out of memory at working size {request.working_size[0]}x"
                                   f"{request.working_size[1]} on {self.runtime.device}; lower --batch-size or "
                                   "working_area, or --set offload=model") from None
        images = list(output.images)
        if len(images) != len(cases):
            raise RuntimeError(f"{self.pipeline_class} returned {len(images)} images for {len(cases)} cases")
        phases = {name: round(seconds / len(cases), 4) for name, seconds in clock.phases().items()}
        results = []
        for source, image in zip(request.sources, images):
            image, native = at_source_size(image, source.size)
            results.append(EditResult(image=image, facts={
                "native_size": native, "steps": self.inference_steps(), "phases": phases,
                "weights": self.weights_revision}))
        return results


class _PhaseClock:
    """Times a pipeline call by the transformer's first and last forward: encode / denoise / decode."""

    def __init__(self, device: str):
        self.sync = device.startswith("cuda")
        self.start = self.first = self.last = self.end = 0.0

    def _now(self) -> float:
        if self.sync:
            import torch

            torch.cuda.synchronize()
        return time.perf_counter()

    @contextlib.contextmanager
    def watch(self, pipe: Any) -> Iterator[None]:
        def before(module, args):
            if not self.first:
                self.first = self._now()

        def after(module, args, output):
            self.last = self._now()

        handles = [pipe.transformer.register_forward_pre_hook(before),
                   pipe.transformer.register_forward_hook(after)]
        self.start = self._now()
        try:
            yield
        finally:
            self.end = self._now()
            for handle in handles:
                handle.remove()

    def phases(self) -> dict[str, float]:
        if not self.first:
            return {"pipeline": self.end - self.start}
        return {"encode": self.first - self.start, "denoise": self.last - self.first, "decode": self.end - self.last}
