"""Cross-check a native drag port against its original, stage by stage, on shared tiny random weights.

    python benchmarks/crosscheck.py dragdiffusion --original ~/src/DragDiffusion
    python benchmarks/crosscheck.py clipdrag --original ~/src/CLIPDrag [--json out.json]
    (also dragnoise and gooddrag; pip install einops accelerate for the originals' own imports)
    python benchmarks/crosscheck.py tvedit-qwen --original ~/src/TVEdit   (benchmarks/crosscheck_tvedit.py)

The user clones the original repository (tvbench contains none of its code); this script puts the checkout on
``sys.path``, imports the original's own functions and runs them beside the port's on the same inputs: one tiny
random Stable-Diffusion-1.5-shaped pipeline saved with ``save_pretrained`` and loaded by each side through its own
loading path, one textured image whose height is not a multiple of 8, the same points, mask, prompt and steps,
float32 on the CPU with one thread. It prints, per stage, the largest absolute difference and the tolerance that
stage must meet, and exits 1 when a stage misses it.

Stages: the DDIM inversion latent; the UNet's noise prediction and the feature map the drag supervises; one
motion-supervision step (the gradient of the optimised tensor, and the tensor after the Adam step); point tracking
on the same feature maps; the tensor after the whole drag; the final latent; the decoded image. GoodDrag adds its
undragged trajectory and the final handles, and runs its own ``GoodDragger`` end to end. The identity LoRA is off
on both sides: the originals train it through ``set_lora_layer`` and ``LoRAAttnProcessor``, which today's diffusers
no longer has.

Needs of the originals beyond tvbench's: ``einops`` (their attention code). GoodDrag imports
``pytorch_lightning`` for ``seed_everything`` alone: ``torch.manual_seed`` stands in. Three stand-ins for CLIPDrag, each
because the original cannot run here otherwise: it loads OpenAI's ``clip`` package and its ViT-B/16 weights from
the network, so a ``clip`` module hands it the same tiny transformers ``CLIPModel`` the port loads (``encode_image``
/ ``encode_text`` are that model's projected features, ``tokenize`` its tokenizer); its ``utils.augmentations``
imports kornia and pools to ViT-B/16's 224 pixels, and returns the pooled batch before any augmentation, so a
module that pools to the tiny CLIP's size stands in; and its ``pred_x0.half()`` before decoding (a cast meant for
CUDA under float16 autocast) is an identity while it runs in float32 on the CPU. For DragNoise: its unused
TensorBoard import is stubbed. DragNoise's and GoodDrag's ``.cuda()`` calls are identities on a machine without
CUDA.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import subprocess
import sys
import tempfile
import types
from dataclasses import asdict, dataclass
from pathlib import Path

METHODS = ("dragdiffusion", "clipdrag", "dragnoise", "gooddrag", "tvedit-qwen")
# Where each original keeps the code the check imports (a checkout without it is refused in one line).
ORIGINAL_MARKER = {"tvedit-qwen": "demo/tvedit_qwen/content_aware_spatial_controller.py"}
SIZE = (64, 67)  # (w, h): 67 rows exercise the VAE's rounding (8 latent rows, 64 decoded)
POINTS = ((20.0, 30.0, 40.0, 34.0), (48.0, 12.0, 44.0, 22.0))  # (x_handle, y_handle, x_target, y_target)
# GoodDrag's tracking and patches index past the grid near its border (no clipping), so its points keep r2 = 12
# cells from every border of a larger grid: 67 x 64 supervision cells.
GOODDRAG_SIZE = (128, 134)
GOODDRAG_POINTS = ((60.0, 60.0, 80.0, 68.0), (76.0, 84.0, 64.0, 90.0))
PROMPT = "a textured square"
EDIT_TEXT = "make it rounder"
N_STEPS, STRENGTH, DRAG_STEPS, KV_LAYER = 10, 0.5, 4, 4


@dataclass
class Stage:
    name: str
    max_abs_diff: float
    tolerance: float
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.tolerance


def max_diff(a, b) -> float:
    import torch

    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    if a.shape != b.shape:
        return float("inf")
    return float((a - b).abs().max()) if a.numel() else 0.0


def print_stages(stages: list[Stage]) -> None:
    """The table: stage, max |diff|, tolerance, ok (and the stage's note)."""
    width = max(len(s.name) for s in stages)
    print(f"{'stage':<{width}}  {'max |diff|':>10}  {'tolerance':>9}  ok")
    for s in stages:
        print(f"{s.name:<{width}}  {s.max_abs_diff:>10.3g}  {s.tolerance:>9.0e}  {'yes' if s.passed else 'NO'}"
              + (f"  ({s.note})" if s.note else ""))


def commit_of(path: Path) -> str:
    """HEAD of the checkout at ``path`` ('unknown' when ``path`` is not the top of a git checkout)."""
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True,
                                  check=True).stdout.strip()
        if Path(git("rev-parse", "--show-toplevel")).resolve() != Path(path).resolve():
            return "unknown"
        return git("rev-parse", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def textured_image(size: tuple[int, int] = SIZE):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([np.sin(xx / 5.0), np.cos(yy / 7.0), np.sin((xx + yy) / 9.0)], axis=-1)
    pixels = (127.5 + 100 * base + rng.normal(0, 10, (h, w, 3))).clip(0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def mask_array(size: tuple[int, int] = SIZE):
    import numpy as np

    w, h = size
    mask = np.zeros((h, w), dtype=np.float32)
    mask[h // 12:h * 5 // 6, w // 8:w * 15 // 16] = 255.0
    return mask


class RecordingAdam:
    """A stand-in for ``torch.optim.Adam`` inside a ``with`` block: records each step's gradients and the
    optimised tensors (the last optimiser's)."""

    def __init__(self):
        import torch

        self.real, self.grads, self.params = torch.optim.Adam, [], []
        recorder = self

        class Recording(self.real):
            def __init__(self, params, *args, **kwargs):
                super().__init__(params, *args, **kwargs)
                recorder.params = [p for g in self.param_groups for p in g["params"]]

            def step(self, closure=None):
                recorder.grads.append([p.grad.detach().clone() for g in self.param_groups for p in g["params"]])
                return super().step(closure)

        self.cls = Recording

    def __enter__(self):
        import torch

        torch.optim.Adam = self.cls
        return self

    def __exit__(self, *exc):
        import torch

        torch.optim.Adam = self.real


@contextlib.contextmanager
def cpu_stand_ins(method: str):
    """Identities for the originals' CUDA-only calls while they run in float32 on the CPU: CLIPDrag decodes
    ``pred_x0.half()`` (meant for float16 autocast; on the CPU it only breaks the VAE's convolution), DragNoise's
    ``get_text_embeddings`` and GoodDrag's drag step and mask call ``.cuda()``."""
    import torch

    saved = torch.Tensor.half, torch.Tensor.cuda
    if method == "clipdrag":
        torch.Tensor.half = lambda self, *args, **kwargs: self
    if method in ("dragnoise", "gooddrag") and not torch.cuda.is_available():
        torch.Tensor.cuda = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        torch.Tensor.half, torch.Tensor.cuda = saved


@contextlib.contextmanager
def quiet():
    """The originals print every step; keep the table readable."""
    with contextlib.redirect_stdout(io.StringIO()) as out:
        yield out


# -- the two sides --------------------------------------------------------------------------------------------

def build_port(weights: Path, method: str, clip_folder: Path | None):
    from tvbench.methods import create_method
    from tvbench.methods.base import Runtime

    options = {"model": str(weights), "resolution": str(SIZE[0]), "n_steps": str(N_STEPS),
               "inversion_strength": str(STRENGTH), "lora_steps": "0", "drag_steps": str(DRAG_STEPS)}
    if method != "dragnoise":  # DragNoise denoises without key/value control
        options["kv_start_layer"] = str(KV_LAYER)
    if method == "clipdrag":
        options["clip_model"] = str(clip_folder)
    port = create_method(method, options)
    port.runtime = port.resolve_runtime(Runtime(device="cpu", threads=1))
    port.setup()
    return port


def build_original(weights: Path, original: Path, method: str, clip_folder: Path | None):
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    sys.path.insert(0, str(original))
    if method == "clipdrag":
        install_clip_stand_in(clip_folder)
    if method == "dragnoise":  # its drag_utils imports a TensorBoard writer it never uses
        sys.modules.setdefault("torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=None))
    import drag_pipeline
    from utils import attn_utils, drag_utils

    # The scheduler exactly as drag_bench_evaluation/run_drag_diffusion.py builds it.
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    model = drag_pipeline.DragPipeline(
        vae=AutoencoderKL.from_pretrained(weights / "vae"), text_encoder=CLIPTextModel.from_pretrained(
            weights / "text_encoder"), tokenizer=CLIPTokenizer.from_pretrained(weights / "tokenizer"),
        unet=UNet2DConditionModel.from_pretrained(weights / "unet"), scheduler=scheduler, safety_checker=None,
        feature_extractor=None, requires_safety_checker=False)
    model.modify_unet_forward()
    model.unet.set_default_attn_processor()  # run_drag with lora_path == ""
    for module in (model.unet, model.vae, model.text_encoder):
        module.requires_grad_(False).eval()
    torch.set_grad_enabled(True)
    return model, drag_utils, attn_utils


def install_clip_stand_in(clip_folder: Path) -> None:
    """A ``clip`` module over the tiny transformers CLIP (the original's ``clip.load`` downloads ViT-B/16)."""
    import torch
    from transformers import CLIPModel, CLIPTokenizer

    model = CLIPModel.from_pretrained(str(clip_folder)).eval().requires_grad_(False)
    tokenizer = CLIPTokenizer.from_pretrained(str(clip_folder))

    def features(output):
        return output if hasattr(output, "shape") else output.pooler_output

    class Loaded(torch.nn.Module):
        def encode_image(self, pixels):
            return features(model.get_image_features(pixel_values=pixels))

        def encode_text(self, ids):
            return features(model.get_text_features(input_ids=ids))

    stand_in = types.ModuleType("clip")
    stand_in.load = lambda name, device="cpu", **kw: (Loaded().eval(), None)
    stand_in.tokenize = lambda text: tokenizer([text] if isinstance(text, str) else text, padding="max_length",
                                               truncation=True, max_length=tokenizer.model_max_length,
                                               return_tensors="pt").input_ids
    sys.modules["clip"] = stand_in
    # The augmentation module the original imports averages to CLIP's input size; its size is ViT-B/16's 224.
    # The tiny CLIP reads its own size: run the original's pooling at that size.
    size = model.config.vision_config.image_size
    augmentations = types.ModuleType("utils.augmentations")

    class ImageAugmentations(torch.nn.Module):
        def __init__(self, output_size, augmentations_number, p=0.7):
            super().__init__()
            self.avg_pool = torch.nn.AdaptiveAvgPool2d((size, size))

        def forward(self, input):
            return self.avg_pool(input)  # the original returns the pooled batch before augmenting

    augmentations.ImageAugmentations = ImageAugmentations
    sys.modules["utils.augmentations"] = augmentations


# -- the stages -----------------------------------------------------------------------------------------------

def crosscheck(method: str, original: Path) -> tuple[list[Stage], dict]:
    import diffusers
    import torch
    import transformers

    torch.set_num_threads(1)
    workdir = Path(tempfile.mkdtemp(prefix="tvbench-crosscheck-"))
    if method == "tvedit-qwen":
        from crosscheck_tvedit import crosscheck_tvedit  # beside this script

        stages = crosscheck_tvedit(original, workdir)
        size, points = (2048, 1536), "the case's three pairs, then every pixel of four source sizes"
    elif method == "gooddrag":
        stages = crosscheck_gooddrag(original, workdir)
        size, points = GOODDRAG_SIZE, GOODDRAG_POINTS
    else:
        stages = crosscheck_latent_drag(method, original, workdir)
        size, points = SIZE, POINTS
    facts = {"method": method, "original": str(original), "original_commit": commit_of(original),
             "torch": torch.__version__, "diffusers": diffusers.__version__,
             "transformers": transformers.__version__, "image": list(size), "points": points, "n_steps": N_STEPS,
             "inversion_strength": STRENGTH, "lora": "off on both sides"}
    return stages, facts


def crosscheck_latent_drag(method: str, original: Path, workdir: Path) -> list[Stage]:
    """DragDiffusion and the two built on its code (CLIPDrag, DragNoise): one ``drag_diffusion_update`` each."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from tvbench.testing.tiny_sd import save_tiny_clip, save_tiny_sd
    from tvbench_adapters.drag.geometry import DragGeometry
    from tvbench_adapters.drag.method import DragContext
    from tvbench_adapters.drag.motion import track_points
    from tvbench_adapters.drag.timing import PhaseTimer

    weights = save_tiny_sd(workdir / "sd15")
    clip_folder = save_tiny_clip(workdir / "clip") if method == "clipdrag" else None
    port = build_port(weights, method, clip_folder)
    with quiet():
        model, drag_utils, attn_utils = build_original(weights, original, method, clip_folder)
    engine, schedule = port._engine, port._schedule
    stages: list[Stage] = []

    image = textured_image()
    geometry = DragGeometry.of(*image.size, port.resolution)
    assert geometry.work_size == image.size, "the image is already at its working width"
    full_w, full_h = image.size
    sup_h, sup_w = int(0.5 * full_h), int(0.5 * full_w)  # run_drag_diffusion.py
    n_actual = round(STRENGTH * N_STEPS)

    # 1. DDIM inversion ------------------------------------------------------------------------------------------
    text = engine.text_embedding(PROMPT)
    port_z = engine.invert(engine.encode(image), text, schedule, STRENGTH)
    pixels = torch.from_numpy(np.array(image)).float() / 127.5 - 1  # run_drag_diffusion.py: preprocess_image
    pixels = pixels.permute(2, 0, 1)[None]
    with quiet(), torch.no_grad(), cpu_stand_ins(method):
        orig_text = model.get_text_embeddings(PROMPT)
        orig_z = model.invert(pixels, PROMPT, guidance_scale=1.0, num_inference_steps=N_STEPS,
                              num_actual_inference_steps=n_actual)
    stages.append(Stage("text embedding", max_diff(text, orig_text), 1e-6))
    stages.append(Stage("inversion latent z_t", max_diff(port_z, orig_z), 1e-5,
                        f"latent {tuple(orig_z.shape[-2:])} from {full_h} rows"))

    # 2. features at the handle grid ----------------------------------------------------------------------------
    model.scheduler.set_timesteps(N_STEPS)
    t = model.scheduler.timesteps[N_STEPS - n_actual]
    start = schedule.start_index(STRENGTH)
    assert schedule.timesteps[start] == int(t)
    z = orig_z.clone()
    with torch.no_grad():
        feature_idx = port._feature_index + 1  # all_intermediate_features: [mid block, up_blocks...]
        orig_eps, orig_features, *_ = model.forward_unet_features(z, t, encoder_hidden_states=orig_text,
                                                                  layer_idx=[feature_idx], interp_res_h=sup_h,
                                                                  interp_res_w=sup_w)
        port_eps, port_features = engine.eps_and_features(z, int(t), text, port._feature_index, (sup_h, sup_w))
    stages.append(Stage("UNet noise prediction", max_diff(port_eps, orig_eps), 1e-5))
    stages.append(Stage("supervision features", max_diff(port_features, orig_features), 1e-5,
                        f"up_blocks[{port._feature_index}] at {sup_h}x{sup_w}"))

    # shared drag inputs ------------------------------------------------------------------------------------------
    mask = torch.from_numpy(mask_array()) / 255.0
    mask[mask > 0.0] = 1.0
    mask = F.interpolate(mask[None, None], (sup_h, sup_w), mode="nearest")
    orig_handles, orig_targets = [], []
    for x, y, xt, yt in POINTS:
        orig_handles.append(torch.round(torch.tensor([y / full_h * sup_h, x / full_w * sup_w])))
        orig_targets.append(torch.round(torch.tensor([yt / full_h * sup_h, xt / full_w * sup_w])))
    handles, targets = geometry.handles_and_targets(POINTS)
    stages.append(Stage("handles and targets on the supervision grid",
                        max_diff(torch.stack(orig_handles + orig_targets), torch.tensor(handles + targets)), 0.0))
    latent_mask = F.interpolate(mask, tuple(orig_z.shape[-2:]), mode="nearest")

    def port_context():
        return DragContext(engine=engine, schedule=schedule, geometry=geometry, text=text, latent=orig_z.clone(),
                           start=start, handles=list(handles), targets=list(targets), mask=latent_mask,
                           timer=PhaseTimer(), case=types.SimpleNamespace(instruction=EDIT_TEXT, caption=PROMPT),
                           feature_block=port._feature_index, precision=port.precision())

    def original_args(steps: int):
        args = types.SimpleNamespace(prompt=PROMPT, drag_prompt=EDIT_TEXT, unet_feature_idx=[feature_idx],
                                     sup_res_h=sup_h, sup_res_w=sup_w, r_m=port.r_m, r_p=port.r_p, lam=port.lam,
                                     lr=port.lr, n_pix_step=steps)
        if method == "clipdrag":
            args.fuse_cof, args.clip_loss_coef = port.fuse, port.clip_loss_weight
        return args

    def run_original(steps: int, denoise: bool = False):
        """The original's drag (and, with ``denoise``, its final denoising, as its DragBench script calls it)."""
        final = None
        with RecordingAdam() as adam, quiet(), cpu_stand_ins(method):
            if method == "dragnoise":
                _, optimised, _ = drag_utils.drag_diffusion_update(model, orig_z.clone(), t,
                                                                   copy.deepcopy(orig_handles), orig_targets, mask,
                                                                   original_args(steps))
                if denoise:
                    with torch.no_grad():
                        _, latents = model(prompt=PROMPT, h_feature=optimised.detach(), end_step=port.end_step,
                                           batch_size=2, latents=torch.cat([orig_z, orig_z]), guidance_scale=1.0,
                                           num_inference_steps=N_STEPS, num_actual_inference_steps=n_actual,
                                           return_intermediates=True)
                    final = latents[-1][1:]
            else:
                optimised = drag_utils.drag_diffusion_update(model, orig_z.clone(), None, t,
                                                             copy.deepcopy(orig_handles), orig_targets, mask,
                                                             original_args(steps))
                if denoise:
                    with torch.no_grad():
                        editor = attn_utils.MutualSelfAttentionControl(start_step=0, start_layer=KV_LAYER,
                                                                       total_steps=N_STEPS, guidance_scale=1.0)
                        attn_utils.register_attention_editor_diffusers(model, editor, attn_processor="attn_proc")
                        _, latents = model(prompt=PROMPT, batch_size=2,
                                           latents=torch.cat([orig_z, optimised.detach()]), guidance_scale=1.0,
                                           num_inference_steps=N_STEPS, num_actual_inference_steps=n_actual,
                                           return_intermediates=True)
                    final = latents[-1][1:]
        return adam.params[0].detach().clone(), adam.grads, final

    def run_port(steps: int):
        """The port's own ``drag_and_denoise`` with at most ``steps`` drag steps."""
        port.drag_steps = steps
        ctx = port_context()
        with RecordingAdam() as adam:
            outcome = port.drag_and_denoise(ctx)
        return adam.params[0].detach().clone(), adam.grads, outcome

    optimised_name = "bottleneck" if method == "dragnoise" else "latent"
    # 3. one motion-supervision step -------------------------------------------------------------------------------
    orig_one, orig_grads, _ = run_original(1)
    port_one, port_grads, _ = run_port(1)
    largest = float(orig_grads[0][0].abs().max())
    stages.append(Stage(f"one drag step: {optimised_name} gradient", max_diff(port_grads[0][0], orig_grads[0][0]),
                        1e-5 * max(1.0, largest), f"max |gradient| {largest:.3g}; tolerance 1e-5 of it"))
    stages.append(Stage(f"one drag step: {optimised_name} after Adam", max_diff(port_one, orig_one), 1e-5))

    # 4. point tracking on the same feature maps -----------------------------------------------------------------
    with torch.no_grad():
        shifted = torch.roll(orig_features, shifts=(1, 2), dims=(2, 3))  # a feature map that moved
        args = original_args(1)
        if method == "clipdrag":
            with quiet():
                tracked = drag_utils.fast_point_tracking(orig_features, shifted, copy.deepcopy(orig_handles),
                                                         orig_handles, orig_targets, args)
            port_tracked = track_points(orig_features, shifted, handles, handles, port.r_p, targets)
        else:
            tracked = drag_utils.point_tracking(orig_features, shifted, copy.deepcopy(orig_handles), orig_handles,
                                                args)
            port_tracked = track_points(orig_features, shifted, handles, handles, port.r_p)
    stages.append(Stage("point tracking", max_diff(torch.stack(tracked), torch.tensor(port_tracked)), 0.0,
                        f"handles {[tuple(int(v) for v in p) for p in tracked]}"))

    # 5. the whole drag, then the final denoising ----------------------------------------------------------------
    orig_dragged, _, orig_final = run_original(DRAG_STEPS, denoise=True)
    port_dragged, port_grads, outcome = run_port(DRAG_STEPS)
    stages.append(Stage(f"{optimised_name} after the drag ({DRAG_STEPS} steps max)",
                        max_diff(port_dragged, orig_dragged), 1e-4, f"port: {outcome.iterations} iterations"))
    stages.append(Stage("final latent", max_diff(outcome.latent, orig_final), 1e-5,
                        "source-KV denoising" if method != "dragnoise" else "bottleneck substituted"))
    with torch.no_grad(), quiet():
        orig_image = model.latent2image(orig_final, return_type="pt")
        port_image = engine.decode(outcome.latent)
    stages.append(Stage("decoded image [0, 1]", max_diff(port_image, orig_image), 1e-4,
                        f"{tuple(orig_image.shape[-2:])} decoded from {full_h} rows"))
    return stages


GOODDRAG_SETTINGS = {"drag_end_step": 2, "tracks_per_step": 2, "drags_per_track": 2}


def crosscheck_gooddrag(original: Path, workdir: Path) -> list[Stage]:
    """GoodDrag's ``GoodDragger``: inversion, features, the undragged trajectory, one drag step, tracking, the
    alternating drag and denoising (``good_drag``), on a pipeline folder both load (GoodDragger loads it itself)."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from diffusers import StableDiffusionPipeline

    from tvbench.methods import create_method
    from tvbench.methods.base import Runtime
    from tvbench.testing.tiny_sd import tiny_sd_components
    from tvbench_adapters.drag.geometry import DragGeometry
    from tvbench_adapters.drag.gooddrag import _DragState
    from tvbench_adapters.drag.method import DragContext
    from tvbench_adapters.drag.motion import track_points
    from tvbench_adapters.drag.timing import PhaseTimer

    weights = workdir / "sd15-pipeline"
    StableDiffusionPipeline(**tiny_sd_components(), safety_checker=None, feature_extractor=None,
                            requires_safety_checker=False).save_pretrained(weights)
    settings = {**GOODDRAG_SETTINGS, "model": str(weights), "vae": "", "resolution": str(GOODDRAG_SIZE[0]),
                "n_steps": str(N_STEPS), "inversion_strength": str(STRENGTH), "lora_steps": "0"}
    port = create_method("gooddrag", {k: str(v) for k, v in settings.items()})
    port.runtime = port.resolve_runtime(Runtime(device="cpu", threads=1))
    port.setup()
    engine, schedule = port._engine, port._schedule

    sys.path.insert(0, str(original))
    lightning = types.ModuleType("pytorch_lightning")  # only its seed_everything is imported
    lightning.seed_everything = lambda seed: torch.manual_seed(seed)
    sys.modules.setdefault("pytorch_lightning", lightning)
    image = textured_image(GOODDRAG_SIZE)
    full_w, full_h = image.size

    def dragger():
        import pipeline  # GoodDrag's pipeline.py

        with quiet():
            return pipeline.GoodDragger(
                "cpu", str(weights), "", full_h, full_w, STRENGTH, r1=port.r1, r2=port.r2, beta=port.d,
                drag_end_step=port.drag_end_step, track_per_denoise=port.tracks_per_step, lam=port.lam,
                latent_lr=port.lr, n_inference_step=N_STEPS, feature_idx=port._feature_index + 1,
                vae_path="default", lora_path="", max_drag_per_track=port.drags_per_track,
                drag_loss_threshold=port.drag_loss_threshold, max_track_no_change=port.max_track_no_change)

    stages: list[Stage] = []
    with cpu_stand_ins("gooddrag"):
        original_dragger = dragger()
        pixels = (torch.from_numpy(np.array(image)).float() / 127.5 - 1).permute(2, 0, 1)[None]
        with quiet(), torch.no_grad():
            orig_text = original_dragger.get_text_embeddings("")
            orig_z = original_dragger.invert(pixels, "")
        text = engine.text_embedding("")
        port_z = engine.invert(engine.encode(image), text, schedule, STRENGTH)
        stages.append(Stage("text embedding (empty prompt)", max_diff(text, orig_text), 1e-6))
        stages.append(Stage("inversion latent z_t", max_diff(port_z, orig_z), 1e-5,
                            f"latent {tuple(orig_z.shape[-2:])} from {full_h} rows"))

        geometry = DragGeometry.of(full_w, full_h, port.resolution)
        sup_h, sup_w = geometry.supervision_size
        start = schedule.start_index(STRENGTH)
        timesteps = original_dragger.model.scheduler.timesteps[start:]
        t = timesteps[0]
        with torch.no_grad(), quiet():
            orig_eps, orig_features = original_dragger.forward_unet_features(orig_z, t, orig_text)
            port_eps, port_features = engine.eps_and_features(orig_z, int(t), text, port._feature_index,
                                                              (sup_h, sup_w))
        stages.append(Stage("UNet noise prediction", max_diff(port_eps, orig_eps), 1e-5))
        stages.append(Stage("supervision features", max_diff(port_features, orig_features), 1e-5,
                            f"up_blocks[{port._feature_index}] at {sup_h}x{sup_w}"))

        flat = [p for x, y, xt, yt in GOODDRAG_POINTS for p in ((x, y), (xt, yt))]
        with quiet():
            orig_handles, orig_targets = original_dragger.get_handle_target_points(flat)
        handles, targets = geometry.handles_and_targets(GOODDRAG_POINTS)
        stages.append(Stage("handles and targets on the supervision grid",
                            max_diff(torch.stack(orig_handles + orig_targets), torch.tensor(handles + targets)), 0.0))
        mask_u8 = mask_array(GOODDRAG_SIZE)
        with quiet():
            mask = original_dragger.prepare_mask(mask_u8)
        latent_mask = F.interpolate(mask, tuple(orig_z.shape[-2:]), mode="nearest")

        def port_context():
            return DragContext(engine=engine, schedule=schedule, geometry=geometry, text=text, latent=orig_z.clone(),
                               start=start, handles=list(handles), targets=list(targets), mask=latent_mask,
                               timer=PhaseTimer(), case=types.SimpleNamespace(caption=""),
                               feature_block=port._feature_index, precision=port.precision())

        # the undragged trajectory the drag is supervised against
        with quiet():
            orig_steps, orig_refs = original_dragger.get_original_features(orig_z.clone(), orig_text)
        ctx = port_context()
        port_refs = port._undragged_trajectory(ctx, list(ctx.remaining_steps)[: port.drag_end_step])
        worst_latent = max(max_diff(x, orig_steps[int(tt)]) for (x, _), tt in zip(port_refs, timesteps))
        worst_features = max(max_diff(f, orig_refs[int(tt)]) for (_, f), tt in zip(port_refs, timesteps))
        stages.append(Stage("undragged trajectory: next latents", worst_latent, 1e-5,
                            f"{port.drag_end_step} steps"))
        stages.append(Stage("undragged trajectory: features", worst_features, 1e-5))

        # one drag step at the first timestep: one round of one Adam step
        one = dragger()
        one.track_per_denoise, one.max_drag_per_track = 1, 1
        with RecordingAdam() as adam, quiet():
            one.gooddrag_step(orig_z.clone(), t, timesteps[1], orig_text, copy.deepcopy(orig_handles),
                              orig_targets, orig_refs, orig_handles, orig_steps, latent_mask)
        orig_grad, orig_one = adam.grads[0][0], adam.params[0].detach().clone()
        port.tracks_per_step, port.drags_per_track = 1, 1
        state = _DragState(handles=list(handles), initial=list(handles))
        with RecordingAdam() as adam:
            port._drag_step(port_context(), orig_z.clone(), int(t), *port_refs[0], state)
        largest = float(orig_grad.abs().max())
        stages.append(Stage("one drag step: latent gradient", max_diff(adam.grads[0][0], orig_grad),
                            1e-5 * max(1.0, largest), f"max |gradient| {largest:.3g}; tolerance 1e-5 of it"))
        stages.append(Stage("one drag step: latent after Adam", max_diff(adam.params[0], orig_one), 1e-5))
        port.tracks_per_step = GOODDRAG_SETTINGS["tracks_per_step"]
        port.drags_per_track = GOODDRAG_SETTINGS["drags_per_track"]

        # point tracking on the same feature maps
        from utils import drag_utils

        shifted = torch.roll(orig_features, shifts=(1, 2), dims=(2, 3))
        tracked = drag_utils.point_tracking(orig_features, shifted, copy.deepcopy(orig_handles), orig_handles,
                                            port.r2)
        port_tracked = track_points(orig_features, shifted, handles, handles, port.r2)
        stages.append(Stage("point tracking", max_diff(torch.stack(tracked), torch.tensor(port_tracked)), 0.0,
                            f"handles {[tuple(int(v) for v in p) for p in tracked]}"))

        # the whole method: drags alternating with denoising, then source-KV denoising
        whole = dragger()
        with quiet():
            orig_image, latents, orig_final_handles, _ = whole.good_drag(pixels, flat, mask_u8,
                                                                         return_intermediate_features=True)
        outcome = port.drag_and_denoise(port_context())
        stages.append(Stage("final handles", max_diff(torch.stack(orig_final_handles),
                                                      torch.tensor(outcome.handles)), 0.0,
                            f"port: {outcome.iterations} drag steps, stop {outcome.facts.get('drag_stop')}"))
        stages.append(Stage("final latent", max_diff(outcome.latent, latents[-1]), 1e-5,
                            f"drag_end_step {port.drag_end_step}, {port.tracks_per_step} rounds of "
                            f"{port.drags_per_track}"))
        with torch.no_grad():
            port_image = engine.decode(outcome.latent)
        stages.append(Stage("decoded image [0, 1]", max_diff(port_image, orig_image), 1e-4,
                            f"{tuple(orig_image.shape[-2:])} decoded from {full_h} rows"))
    return stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("method", choices=METHODS)
    parser.add_argument("--original", required=True, type=Path, help="a checkout of the original repository")
    parser.add_argument("--json", type=Path, help="also write the table and the facts here")
    args = parser.parse_args(argv)
    marker = ORIGINAL_MARKER.get(args.method, "utils/drag_utils.py")  # every drag original keeps its code there
    if not (args.original / marker).is_file():
        parser.error(f"{args.original} is not a checkout of {args.method}'s repository (no {marker})")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    stages, facts = crosscheck(args.method, args.original.resolve())
    print(f"{args.method} against {facts['original_commit'][:7]} ({facts['original']}); torch {facts['torch']}, "
          f"diffusers {facts['diffusers']}, float32 on the CPU")
    print_stages(stages)
    if args.json:
        args.json.write_text(json.dumps({"facts": facts, "stages": [{**asdict(s), "passed": s.passed}
                                                                     for s in stages]}, indent=2) + "\n")
    return 0 if all(s.passed for s in stages) else 1


if __name__ == "__main__":
    sys.exit(main())
