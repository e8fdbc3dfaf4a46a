"""Cross-check tvbench's TV-Edit-Qwen controller port against the official code, stage by stage.

    python benchmarks/crosscheck_tvedit.py --original ~/src/TVEdit [--blocks 2] [--workdir DIR]

Why: the port (``adapters/tvedit/``) re-implements the official controller (PolyU-VCLab/TVEdit,
``demo/tvedit_qwen/``) on diffusers' own Qwen-Image transformer, through a forward pre-hook. This script runs
the official functions beside the port's on the same weights and inputs and prints, per stage, the largest
absolute difference and the tolerance that stage must meet; it exits 1 when a stage misses. The user clones
the official repository (tvbench contains none of its code); its ``demo/`` folder goes on ``sys.path``.

One tiny random setup, float32 on the CPU with one thread (about 35 s and 5 GB of memory; ``--blocks 5``: 45 s,
6.5 GB; the backbone's real width makes it 0.7 B parameters):

- a Qwen-Image transformer of the real width (24 heads x 128 = 3072, 64 latent channels, rope axes
  (16, 56, 56)) but 2 blocks and 16-wide text states, seeded, saved with ``save_pretrained``; each side loads
  that folder with its own class (the official ``transformer_qwenimage.QwenImageTransformer2DModel``, diffusers'
  ``QwenImageTransformer2DModel`` for the port). The width must be the real one: the official
  ``from_transformer`` hard-codes the controller's heads (16 x 96), rope axes (16, 40, 40) and input width
  (128), and the port picks those for a 3072-wide backbone only; the rope axes hold no weights, so only
  equal outputs show that the port chose them right;
- the official controller built by the official ``create_controller`` (``tv_edit_model.py``) with the
  arguments ``TVEditModel`` passes, but ``--blocks`` controller blocks (default 2, 6 heads; the released model
  has 5), and the official ``SparsePointEncoder()``, both seeded. Their heads start at N(0, 1e-4), which would
  hide any divergence in the transformer's output, and their norms at 1 and biases at 0, which would hide
  swapped tensors: every parameter that holds a single value gets seeded noise and the heads' weights are
  multiplied by 100 (a stand-in for trained weights). Their state dicts go to disk in the official layout
  ``{"point_encoder": ..., "casc": ...}`` (``torch.save``) and the port reads that file with its own loader
  (``checkpoint.load_controller``);
- the inputs of one step of the official pipeline: noised latent and condition-image tokens on a 4 x 4 grid
  each, 7 text tokens (batch 1, no padding), ``t / 1000``, ``img_shapes``, and three drag pairs on a
  2048 x 1536 source (odd x land on exact halves at 1024: the rounding is half to even on both sides).

Stages: the point maps at 1024 x 1024 (the demo's ``remap_coordinates`` + ``point2disk`` against the port's
``point_map``; the case's points, then every integer pixel of four DragBench-like source sizes); the point maps
the port's hook draws at the token grid against the demo's rule there; the point encoder's handle and target
tokens on the same maps; the point tokens the controller concatenates; each controller residual; diffusers'
transformer alone against the official copy (a diagnostic: the port's backbone is diffusers'); the transformer
output with the residuals injected; and the injection rule with more backbone blocks than residuals (7 and 3,
on a tiny backbone with random residuals), which the main setup (2 blocks, interval 1) does not reach.

Stand-ins: ``gradio_demo.py`` imports gradio and, through ``tv_edit_model.py``, lightning and prodigyopt at
module level, and ``tv_edit_model.py`` also the official pipeline (transformers' Qwen2.5-VL): rather than stub
those modules, the three functions needed (``remap_coordinates``, ``point2disk``, ``create_controller``) are
read from those files with ``ast`` and executed verbatim with numpy, torch and the official controller class.
The official ``content_aware_spatial_controller``, ``sparse_point_encoder`` and ``transformer_qwenimage``
modules are imported unchanged. At the tiny grid the demo's rule is applied as ``remap_coordinates`` (to
1024) times ``S / 1024`` (a power of two, exact) and ``point2disk`` at S x S, since the demo only draws at 1024.

Out of scope: batches whose prompts pad to unequal lengths (the official blocks attend to the padding, diffusers
0.42 masks it: a difference of the backbone library, not of the port), and non-square grids (the demo squashes
every source to 1024 x 1024).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import os
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterable

import numpy as np
import torch

from crosscheck import Stage, commit_of, max_diff, print_stages  # benchmarks/crosscheck.py, beside

GRID = (4, 4)  # token rows and columns of the noised latent and of the condition image
PIXELS_PER_TOKEN = 16  # VAE factor 8 x 2x2 packing: the point maps are drawn at 16x the token grid
DEMO_SIZE = 1024  # the official demo draws every map at 1024 x 1024
SOURCE_SIZE = (2048, 1536)  # (W, H) of the drag case's source image
PAIRS = ((301, 255, 687, 420), (1024, 1200, 1537, 1001), (1999, 7, 45, 1500))  # (x_h, y_h, x_t, y_t)
SWEEP_SIZES = ((512, 512), (512, 534), (512, 815), (768, 1024))  # every integer pixel of these sources
TEXT_TOKENS = 7
SCHEDULER_T = 703.5  # the pipeline hands t / 1000 to the controller and the transformer
BACKBONE = dict(patch_size=2, in_channels=64, out_channels=16, num_layers=2, attention_head_dim=128,
                num_attention_heads=24, joint_attention_dim=16, guidance_embeds=False, axes_dims_rope=(16, 56, 56))
RULE_BACKBONE = dict(patch_size=2, in_channels=16, out_channels=4, num_layers=7, attention_head_dim=16,
                     num_attention_heads=2, joint_attention_dim=16, guidance_embeds=False, axes_dims_rope=(8, 4, 4))
RULE_RESIDUALS = 3
HEAD_GAIN = 100.0  # the heads' N(0, 1e-4) init times this: residuals large enough to move the output
# Measured: 0.0 at every stage (torch 2.14, diffusers 0.42, one CPU thread), as both sides run the same kernels
# in the same order. The float margins leave room for a CPU or torch build where attention picks another kernel
# for diffusers' all-true text mask than for the official code's None (bitwise equal here).
TOLERANCE = {"exact": 0.0, "encoder": 1e-6, "controller": 1e-5, "transformer": 2e-5}


# --- the official code ---------------------------------------------------------------------------------------

def functions_from(path: Path, names: Iterable[str], namespace: dict[str, Any]) -> dict[str, Callable]:
    """Top-level functions of a file, executed verbatim in ``namespace`` without importing the file."""
    wanted = set(names)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    nodes = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in wanted]
    missing = wanted - {node.name for node in nodes}
    if missing:
        raise SystemExit(f"{path}: no function {', '.join(sorted(missing))}")
    exec(compile(ast.Module(body=nodes, type_ignores=[]), str(path), "exec"), namespace)
    return {name: namespace[name] for name in wanted}


def load_official(original: Path) -> SimpleNamespace:
    demo = original / "demo"
    if str(demo) not in sys.path:
        sys.path.insert(0, str(demo))
    casc = importlib.import_module("tvedit_qwen.content_aware_spatial_controller")
    encoder = importlib.import_module("tvedit_qwen.sparse_point_encoder")
    transformer = importlib.import_module("tvedit_qwen.transformer_qwenimage")
    controller_class = casc.QwenImageContentAwareSpatialController
    demo_functions = functions_from(demo / "gradio_demo.py", ["remap_coordinates", "point2disk"],
                                    {"np": np, "torch": torch})
    model_functions = functions_from(demo / "tvedit_qwen" / "tv_edit_model.py", ["create_controller"],
                                     {"torch": torch, "QwenImageContentAwareSpatialController": controller_class})
    return SimpleNamespace(Transformer=transformer.QwenImageTransformer2DModel,
                           SparsePointEncoder=encoder.SparsePointEncoder, **demo_functions, **model_functions)


def demo_map(official: SimpleNamespace, points: list[tuple[float, float]], source: tuple[int, int],
             size: int = DEMO_SIZE) -> torch.Tensor:
    """The demo's map ``(1, 1, size, size)``: remap to 1024, scale to ``size`` (a power of two), ``point2disk``."""
    coords = official.remap_coordinates(np.array(points, dtype=np.float64), source) * (size / DEMO_SIZE)
    return official.point2disk(torch.tensor(coords).float(), size, size).unsqueeze(0)


# --- shared weights and inputs ---------------------------------------------------------------------------------

@torch.no_grad()
def roughen(module: torch.nn.Module, seed: int) -> None:
    """Seeded noise on every parameter that holds a single value (norms at 1, biases at 0, ...)."""
    generator = torch.Generator().manual_seed(seed)
    for parameter in module.parameters():
        if parameter.numel() == 1 or bool(parameter.min() == parameter.max()):
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))


def save_backbone(config: dict[str, Any], folder: Path, seed: int = 0) -> Path:
    from diffusers import QwenImageTransformer2DModel

    torch.manual_seed(seed)
    model = QwenImageTransformer2DModel(**config)
    roughen(model, seed + 100)
    model.save_pretrained(folder)
    return folder


def step_inputs(config: dict[str, Any], seed: int = 3) -> dict[str, Any]:
    """The arguments one step of the official pipeline hands the controller and the transformer (batch 1)."""
    generator = torch.Generator().manual_seed(seed)
    rows, cols = GRID
    mask = torch.ones(1, TEXT_TOKENS, dtype=torch.long)
    return {
        "hidden_states": torch.randn(1, 2 * rows * cols, config["in_channels"], generator=generator),
        "encoder_hidden_states": torch.randn(1, TEXT_TOKENS, config["joint_attention_dim"], generator=generator),
        "encoder_hidden_states_mask": mask,
        "timestep": torch.tensor([SCHEDULER_T]) / 1000,
        "img_shapes": [[(1, rows, cols), (1, rows, cols)]],
        "guidance": None,
        "txt_seq_lens": mask.sum(dim=1).tolist(),
    }


def diffusers_call(inputs: dict[str, Any]) -> dict[str, Any]:
    """diffusers 0.42's QwenImageEditPipeline passes no ``txt_seq_lens`` (the mask carries the lengths)."""
    return {name: value for name, value in inputs.items() if name != "txt_seq_lens"}


# --- the two sides -------------------------------------------------------------------------------------------

@torch.no_grad()
def run_official(official: SimpleNamespace, backbone: Path, checkpoint: Path, blocks: int,
                 inputs: dict[str, Any]) -> dict[str, Any]:
    """The official pipeline's step: point encoder once, controller, transformer with the residuals."""
    transformer = official.Transformer.from_pretrained(backbone).eval()
    torch.manual_seed(1)
    casc = official.create_controller(transformer=transformer, content_aware_spatial_controller_in_channels=128,
                                      num_content_aware_spatial_controller_layers=blocks,
                                      torch_dtype=torch.float32).eval()
    point_encoder = official.SparsePointEncoder().eval()
    roughen(casc, 11)
    roughen(point_encoder, 12)
    for head in [*casc.controller_blocks, *casc.controller_blocks_scale]:
        head.weight.mul_(HEAD_GAIN)
    torch.save({"point_encoder": point_encoder.state_dict(), "casc": casc.state_dict()}, checkpoint)
    size = GRID[0] * PIXELS_PER_TOKEN
    src_disk = demo_map(official, [p[:2] for p in PAIRS], SOURCE_SIZE, size)
    tgt_disk = demo_map(official, [p[2:] for p in PAIRS], SOURCE_SIZE, size)
    point_emb = point_encoder(src_disk, tgt_disk)
    control_output = casc(**inputs, return_dict=False, point_emb=point_emb)
    call = dict(inputs, attention_kwargs={}, return_dict=False)
    return {
        "handle_map": src_disk, "target_map": tgt_disk, "point_emb": point_emb,
        "point_input": torch.cat((point_emb[1], point_emb[0]), dim=1),
        "residuals": control_output[0],
        "output": transformer(**call, controlnet_block_samples=control_output)[0],
        "backbone_only": transformer(**call)[0],
        "controller_width": casc.inner_dim,
    }


@torch.no_grad()
def run_port(backbone: Path, checkpoint: Path, inputs: dict[str, Any],
             official_maps: tuple[torch.Tensor, torch.Tensor]) -> dict[str, Any]:
    """The port as a user runs it: diffusers' transformer, the official file through our loader, the hook."""
    from diffusers import QwenImageTransformer2DModel

    from tvbench_adapters.tvedit.attach import attach
    from tvbench_adapters.tvedit.checkpoint import load_controller

    transformer = QwenImageTransformer2DModel.from_pretrained(backbone).eval()
    controller = load_controller(checkpoint, transformer)
    seen: dict[str, Any] = {}
    record_calls(controller, "point_tokens", seen, lambda args, result: {
        "target_map": args[0], "handle_map": args[1], "point_input": result})
    call = dict(diffusers_call(inputs), attention_kwargs={}, return_dict=False)
    backbone_only = transformer(**call)[0]
    with attach(transformer, controller, [list(p) for p in PAIRS], SOURCE_SIZE) as hook:
        record_calls(hook, "residuals", seen, lambda args, result: {"residuals": result})
        output = transformer(**call)[0]
    handle_map, target_map = official_maps
    return {**seen, "output": output, "backbone_only": backbone_only, "spec": controller.spec,
            "point_emb": controller.point_encoder(handle_map, target_map)}


def record_calls(owner: Any, method: str, seen: dict[str, Any], pick: Callable[[tuple, Any], dict]) -> None:
    """Wrap ``owner.method`` (on the instance) so that each call's arguments and result land in ``seen``."""
    original = getattr(owner, method)

    def recording(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        seen.update(pick(args, result))
        return result

    setattr(owner, method, recording)


# --- stages --------------------------------------------------------------------------------------------------

def point_map_rows(official: SimpleNamespace) -> list[Stage]:
    """The demo's 1024 x 1024 maps against the port's ``point_map``: the case's points, then a sweep."""
    from tvbench_adapters.tvedit.points import point_map

    def both(points: list[tuple[float, float]], source: tuple[int, int]) -> float:
        ours = point_map(points, source, (DEMO_SIZE, DEMO_SIZE))
        return max_diff(demo_map(official, points, source)[0], ours)

    case = max(both([p[:2] for p in PAIRS], SOURCE_SIZE), both([p[2:] for p in PAIRS], SOURCE_SIZE))
    sweep, count = 0.0, 0
    for width, height in SWEEP_SIZES:
        columns = [(x, (7 * x) % height) for x in range(width)]
        rows = [((5 * y) % width, y) for y in range(height)]
        sweep = max(sweep, both(columns, (width, height)), both(rows, (width, height)))
        count += width + height
    sizes = ", ".join(f"{w}x{h}" for w, h in SWEEP_SIZES)
    return [Stage("point map 1024, case points", case, TOLERANCE["exact"],
                f"{len(PAIRS)} handles and targets on a {SOURCE_SIZE[0]}x{SOURCE_SIZE[1]} source"),
            Stage("point map 1024, every pixel", sweep, TOLERANCE["exact"], f"{count} points; sources {sizes}")]


def step_rows(official_out: dict[str, Any], port_out: dict[str, Any]) -> list[Stage]:
    size = GRID[0] * PIXELS_PER_TOKEN
    maps = max(max_diff(official_out["handle_map"], port_out["handle_map"]),
               max_diff(official_out["target_map"], port_out["target_map"]))
    encoder = max(max_diff(a, b) for a, b in zip(official_out["point_emb"], port_out["point_emb"]))
    rows = [Stage(f"point maps {size}x{size} (hook)", maps, TOLERANCE["exact"], "handles and targets"),
            Stage("point encoder tokens", encoder, TOLERANCE["encoder"], "handle and target tokens, same maps"),
            Stage("point input to the controller", max_diff(official_out["point_input"], port_out["point_input"]),
                TOLERANCE["encoder"], "targets then handles, as the hook builds it")]
    spec = port_out["spec"]
    for k, (theirs, ours) in enumerate(zip(official_out["residuals"], port_out["residuals"])):
        note = f"of {len(official_out['residuals'])}; |value| <= {float(theirs.abs().max()):.3g}"
        rows.append(Stage(f"controller residual {k}", max_diff(theirs, ours), TOLERANCE["controller"], note))
    if len(official_out["residuals"]) != len(port_out["residuals"]):
        rows.append(Stage("controller residual count", float("inf"), 0.0,
                        f"{len(official_out['residuals'])} official, {len(port_out['residuals'])} port"))
    rows.append(Stage("backbone alone (diagnostic)",
                    max_diff(official_out["backbone_only"], port_out["backbone_only"]),
                    TOLERANCE["transformer"], "official transformer copy vs diffusers, no controller"))
    used = min(BACKBONE["num_layers"], len(official_out["residuals"]))
    change = max_diff(official_out["output"], official_out["backbone_only"])
    rows.append(Stage("transformer output, injected", max_diff(official_out["output"], port_out["output"]),
                    TOLERANCE["transformer"], f"residuals 0-{used - 1} injected; they move the output by "
                                              f"{change:.3g}; controller {spec.num_attention_heads}x"
                                              f"{spec.attention_head_dim}, rope {tuple(spec.axes_dims_rope)}"))
    return rows


@torch.no_grad()
def injection_rule_row(official: SimpleNamespace, workdir: Path) -> Stage:
    """7 backbone blocks, 3 random residuals: the official in-loop indexing against ``transformer_kwargs``."""
    from diffusers import QwenImageTransformer2DModel

    from tvbench_adapters.tvedit.injection import transformer_kwargs

    folder = save_backbone(RULE_BACKBONE, workdir / "rule_backbone", seed=5)
    inputs = step_inputs(RULE_BACKBONE, seed=6)
    generator = torch.Generator().manual_seed(7)
    width = RULE_BACKBONE["num_attention_heads"] * RULE_BACKBONE["attention_head_dim"]
    residuals = [torch.randn(1, inputs["hidden_states"].shape[1], width, generator=generator)
                 for _ in range(RULE_RESIDUALS)]
    theirs = official.Transformer.from_pretrained(folder).eval()
    ours = QwenImageTransformer2DModel.from_pretrained(folder).eval()
    expected = theirs(**inputs, return_dict=False, controlnet_block_samples=(residuals,))[0]
    got = ours(**diffusers_call(inputs), return_dict=False,
               **transformer_kwargs(residuals, RULE_BACKBONE["num_layers"]))[0]
    return Stage("injection rule, 7 blocks / 3 residuals", max_diff(expected, got), TOLERANCE["transformer"],
               "tiny backbone, random residuals: each residual after 3 blocks")


def crosscheck_tvedit(original: Path, workdir: Path, blocks: int = 2) -> list[Stage]:
    """Every stage's row; ``workdir`` receives the tiny backbones and the official-layout controller file."""
    torch.set_num_threads(1)
    workdir.mkdir(parents=True, exist_ok=True)
    official = load_official(original)
    rows = point_map_rows(official)
    backbone = save_backbone(BACKBONE, workdir / "backbone")
    checkpoint = workdir / "tvedit_official.pt"
    inputs = step_inputs(BACKBONE)
    official_out = run_official(official, backbone, checkpoint, blocks, inputs)
    port_out = run_port(backbone, checkpoint, inputs, (official_out["handle_map"], official_out["target_map"]))
    rows += step_rows(official_out, port_out)
    rows.append(injection_rule_row(official, workdir))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--original", required=True, type=Path, help="a checkout of PolyU-VCLab/TVEdit")
    parser.add_argument("--workdir", type=Path, help="keep the tiny weights here (default: a temporary folder)")
    parser.add_argument("--blocks", type=int, default=2, help="controller blocks (the released model has 5)")
    args = parser.parse_args(argv)
    original = args.original.expanduser().resolve()
    if not (original / "demo" / "tvedit_qwen" / "content_aware_spatial_controller.py").is_file():
        parser.error(f"{original} is not a checkout of PolyU-VCLab/TVEdit (no demo/tvedit_qwen/)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import diffusers

    diffusers.utils.logging.set_verbosity_error()  # the official class ignores diffusers 0.42's newer config keys

    with tempfile.TemporaryDirectory(prefix="crosscheck_tvedit_") as scratch:
        rows = crosscheck_tvedit(original, args.workdir or Path(scratch), args.blocks)
    print(f"tvedit-qwen against {commit_of(original)} ({original}); torch {torch.__version__}, "
          f"diffusers {diffusers.__version__}, float32 on the CPU, {args.blocks} controller blocks")
    print_stages(rows)
    return 0 if all(row.passed for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
