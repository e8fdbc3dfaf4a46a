"""The TV-Edit controller: layout against the official names and Table E.4, both backbones, the pre-hook,
checkpoints (official pickle and ours), point maps, the injection rule. Tiny models on the CPU."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from tvbench.errors import ConfigError  # noqa: E402
from tvbench.testing.tvedit import tiny_transformer, transformer_call  # noqa: E402
from tvbench_adapters.tvedit.attach import attach  # noqa: E402
from tvbench_adapters.tvedit.checkpoint import (CheckpointError, load_controller, read_controller_file,  # noqa: E402
                                                save_controller)
from tvbench_adapters.tvedit.controller import build_controller  # noqa: E402
from tvbench_adapters.tvedit.injection import head_source_block, transformer_kwargs, used_injections  # noqa: E402
from tvbench_adapters.tvedit.layout import layout_spec, tensor_rows  # noqa: E402
from tvbench_adapters.tvedit.points import point_map  # noqa: E402
from tvbench_adapters.tvedit.spec import ControllerSpec  # noqa: E402

torch.set_num_threads(1)
GRIDS = [(4, 5), (4, 5)]  # noised latent, condition image: 4 x 5 tokens each (64 x 80 pixels)
PAIRS = [(3.0, 4.0, 40.0, 30.0), (10.0, 50.0, 20.0, 60.0)]
IMAGE_SIZE = (80, 64)


def _controller(transformer, seed=1, **shape):
    torch.manual_seed(seed)
    return build_controller(ControllerSpec.for_transformer(transformer, **{"blocks": 2, "injections": 3, **shape}))


# --- layout -------------------------------------------------------------------------------------------------

def test_layout_command_prints_official_names_and_table_e4_count():
    done = subprocess.run([sys.executable, "-m", "tvbench", "tvedit", "layout", "--blocks", "5"],
                          capture_output=True, text=True, check=True)
    lines = done.stdout.splitlines()
    assert lines[-1] == "total 507051223"  # Table E.4, N = 5: 506M
    rows = {tuple(line.split("\t")[:2]): line.split("\t")[2] for line in lines[:-1]}
    assert all(len(line.split("\t")) == 3 for line in lines[:-1])
    # names and shapes of the official state dicts (PolyU-VCLab/TVEdit demo/tvedit_qwen, Qwen-Image-Edit backbone)
    expected = {
        ("point_encoder", "handle_proj.weight"): "(4, 1, 3, 3)",
        ("point_encoder", "target_proj.weight"): "(4, 1, 3, 3)",
        ("point_encoder", "downsample_blocks_vae.0.conv1.weight"): "(8, 4, 3, 3)",
        ("point_encoder", "downsample_blocks_vae.0.norm1.weight"): "(8,)",
        ("point_encoder", "downsample_blocks_vae.3.conv2.weight"): "(64, 64, 3, 3)",
        ("point_encoder", "out.weight"): "(64, 64)",
        ("casc", "img_in.weight"): "(1536, 128)",
        ("casc", "txt_norm.weight"): "(3584,)",
        ("casc", "txt_in.weight"): "(1536, 3584)",
        ("casc", "time_text_embed.timestep_embedder.linear_1.weight"): "(1536, 256)",
        ("casc", "time_only_embed.time_embedder.linear_2.weight"): "(1536, 1536)",
        ("casc", "transformer_blocks.4.attn.norm_q.weight"): "(96,)",
        ("casc", "transformer_blocks.4.img_mod.1.weight"): "(9216, 1536)",
        ("casc", "controller_blocks.14.weight"): "(3072, 1536)",
        ("casc", "controller_blocks_scale.14.weight"): "(1, 1536)",
        ("casc", "controller_blocks_scale.14.bias"): "(1,)",
    }
    for key, shape in expected.items():
        assert rows[key] == shape, key
    assert ("casc", "transformer_blocks.5.img_mod.1.weight") not in rows
    assert ("casc", "controller_blocks.15.weight") not in rows


@pytest.mark.parametrize("blocks,injections,total", [(1, 15, 167126743), (3, 15, 337088983), (15, 45, 1498558453)])
def test_layout_counts(blocks, injections, total):
    rows = list(tensor_rows(layout_spec("qwen", blocks, injections)))
    count = sum(int(torch.Size(shape).numel()) for _, _, shape in rows)
    assert count == total


def test_kontext_layout_uses_flux_blocks():
    names = {name for _, name, _ in tensor_rows(layout_spec("kontext", 1, 15))}
    assert "transformer_blocks.0.ff_context.net.2.weight" in names and "txt_norm.weight" not in names
    assert "time_text_embed.guidance_embedder.linear_1.weight" in names


# --- injection rule -----------------------------------------------------------------------------------------

def test_injection_rule_qwen_and_kontext():
    residuals = list(range(15))
    qwen = transformer_kwargs(residuals, 60, 0)["controlnet_block_samples"]
    assert qwen[:8] == [0, 0, 0, 0, 1, 1, 1, 1] and qwen[-1] == 14 and len(qwen) == 60
    kontext = transformer_kwargs(residuals, 19, 38)
    assert kontext["controlnet_block_samples"][16:] == [4, 4, 4]
    assert kontext["controlnet_single_block_samples"][0] == 4 and kontext["controlnet_single_block_samples"][-1] == 14
    assert [head_source_block(k, 5, 15) for k in range(15)] == [k // 3 for k in range(15)]  # official: 3 per block
    assert used_injections(60, 45) == 30  # K = 3N at N = 15 leaves a third of the heads unused


# --- both backbones through the pre-hook --------------------------------------------------------------------

@pytest.mark.parametrize("backbone", ["qwen", "kontext"])
def test_attach_shapes_near_zero_at_init_and_remove(backbone):
    transformer = tiny_transformer(backbone)
    controller = _controller(transformer)
    call = transformer_call(transformer, GRIDS)
    with torch.no_grad():
        base = transformer(**call)[0]
        tokens = controller.point_tokens(torch.zeros(1, 1, 64, 80), torch.zeros(1, 1, 64, 80))
        residuals = controller.casc(call["hidden_states"], tokens,
                                    **{k: v for k, v in call.items() if k != "hidden_states"})
        assert len(residuals) == 3 and all(r.shape == (1, 40, transformer.inner_dim) for r in residuals)
        handle = attach(transformer, controller, PAIRS, IMAGE_SIZE)
        controlled = transformer(**call)[0]
        handle.remove()
        after = transformer(**call)[0]
    assert controlled.shape == base.shape
    change = (controlled - base).abs().max().item()
    assert 0 < change < 0.01 * base.abs().mean().item()  # N(0, 1e-4) heads: almost nothing at initialisation
    assert torch.equal(after, base)
    with torch.no_grad():  # trained heads (here: scaled up) do steer the backbone
        for head in controller.casc.controller_blocks:
            head.weight.mul_(1e3)
        with attach(transformer, controller, PAIRS, IMAGE_SIZE):
            steered = transformer(**call)[0]
    assert (steered - base).abs().max().item() > 10 * change


@pytest.mark.parametrize("backbone", ["qwen", "kontext"])
def test_cfg_negative_branch_reuses_the_positive_residuals(backbone):
    transformer = tiny_transformer(backbone)
    controller = _controller(transformer)
    positive = transformer_call(transformer, GRIDS, seed=0)
    negative = dict(positive, encoder_hidden_states=torch.randn_like(positive["encoder_hidden_states"]))
    with torch.no_grad(), attach(transformer, controller, PAIRS, IMAGE_SIZE) as handle:
        transformer(**positive)
        kept = handle._kept[2]
        transformer(**negative)  # same latents and timestep: the negative branch of the same step
        assert (handle.controller_calls, handle.reused_calls) == (1, 1)
    with torch.no_grad():
        expected = transformer(**dict(negative, **transformer_kwargs(kept, controller.spec.main_double_blocks,
                                                                      controller.spec.main_single_blocks)))[0]
    with torch.no_grad(), attach(transformer, controller, PAIRS, IMAGE_SIZE) as handle:
        transformer(**positive)
        reused = transformer(**negative)[0]
    assert torch.equal(reused, expected)


def test_attach_refuses_a_controller_for_another_backbone():
    qwen, flux = tiny_transformer("qwen"), tiny_transformer("kontext")
    with pytest.raises(ConfigError, match="backbone"):
        attach(flux, _controller(qwen), PAIRS, IMAGE_SIZE)


# --- checkpoints ------------------------------------------------------------------------------------------

def test_official_pickle_loads_strictly_and_runs(tmp_path):
    transformer = tiny_transformer("qwen")
    original = _controller(transformer, seed=3)
    path = tmp_path / "tvedit.pt"
    torch.save(original.state_dicts(), path)  # the official layout: {"point_encoder": ..., "casc": ...}
    loaded = load_controller(path, transformer)
    assert loaded.source == {"path": str(path), "format": "official"}
    assert (loaded.spec.blocks, loaded.spec.injections) == (2, 3)  # counted from the names
    for part, state in original.state_dicts().items():
        for name, tensor in state.items():
            assert torch.equal(loaded.state_dicts()[part][name], tensor)
    call = transformer_call(transformer, GRIDS)
    with torch.no_grad(), attach(transformer, loaded, PAIRS, IMAGE_SIZE):
        assert transformer(**call)[0].shape == (1, 40, 16)


def test_official_pickle_with_extra_top_level_keys_loads_with_a_note(tmp_path, capsys):
    # TVEditModel.load_weight reads state["point_encoder"] and state["casc"] only: other keys are ignored there too
    transformer = tiny_transformer("qwen")
    original = _controller(transformer, seed=4)
    path = tmp_path / "tvedit_step1000.pt"
    torch.save({**original.state_dicts(), "step": 1000, "optimizer": {"lr": torch.tensor(1e-4)},
                "config": {"blocks": 2, "injections": 3}}, path)
    loaded = load_controller(path, transformer)
    assert loaded.source == {"path": str(path), "format": "official", "extra_keys": ["config", "optimizer", "step"]}
    for part, state in original.state_dicts().items():
        for name, tensor in state.items():
            assert torch.equal(loaded.state_dicts()[part][name], tensor)
    note = capsys.readouterr().err.strip().splitlines()
    assert len(note) == 1 and str(path) in note[0] and "config, optimizer, step" in note[0], note


class _Payload:
    def __reduce__(self):
        return (print, ("unpickled code ran",))


def test_pickles_with_anything_but_tensors_are_refused(tmp_path):
    transformer = tiny_transformer("qwen")
    dicts = _controller(transformer).state_dicts()
    cases = {
        "object.pt": {"point_encoder": dicts["point_encoder"], "casc": {"x": _Payload()}},
        "number.pt": {"point_encoder": dicts["point_encoder"], "casc": {**dicts["casc"], "step": 3}},
        "extra_object.pt": {**dicts, "model": _Payload()},  # an extra key is ignored, but nothing is unpickled
        "missing.pt": {"casc": dicts["casc"], "step": 3},
    }
    for name, payload in cases.items():
        path = tmp_path / name
        if name.startswith("object"):
            with open(path, "wb") as handle:
                pickle.dump(payload, handle)
        else:
            torch.save(payload, path)
        with pytest.raises(CheckpointError) as error:
            load_controller(path, transformer)
        message = str(error.value)
        assert str(path) in message and "\n" not in message, name
    shapes = {**dicts, "casc": {**dicts["casc"], "img_in.weight": torch.zeros(3, 3)}}
    torch.save(shapes, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match="img_in.weight has shape"):
        load_controller(tmp_path / "shape.pt", transformer)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_safetensors_round_trip_is_exact(tmp_path, dtype):
    transformer = tiny_transformer("kontext")
    controller = _controller(transformer, seed=5).to(dtype)
    path = save_controller(controller, tmp_path / "run")
    assert path.name == "controller.safetensors"
    dicts, spec, kind, extra = read_controller_file(path)
    assert kind == "ours" and spec == controller.spec and extra == []
    for part, state in controller.state_dicts().items():
        assert set(dicts[part]) == set(state)
        for name, tensor in state.items():
            assert dicts[part][name].dtype == dtype and torch.equal(dicts[part][name], tensor)
    loaded = load_controller(tmp_path / "run", transformer)  # a folder works too
    assert torch.equal(loaded.casc.img_in.weight, controller.casc.img_in.weight.float())


# --- point maps -------------------------------------------------------------------------------------------

def test_point_map_follows_the_official_rule():
    # official demo: x / W * 1024, then torch.round (half to even); 1-based indices; later pairs win
    squashed = point_map([(100.0, 50.0), (0.0, 0.0)], (400, 200), (1024, 1024))
    assert squashed[0, 256, 256] == 1 and squashed[0, 0, 0] == 2 and squashed.sum() == 3
    tiny = point_map([(79.9, 63.9), (0.5, 0.5), (0.6, 0.6)], (80, 64), (8, 8))
    assert tiny[0, 7, 7] == 1  # clipped into the map
    assert tiny[0, 0, 0] == 3  # 0.05 and 0.06 round to 0: the later pair's index wins
