"""The learned tracking entries (torchvision RAFT, CoTracker3) and the registry options, offline.

Every model goes through the loading path a user takes: RAFT from a state-dict file or from the torch cache where
torchvision keeps its published weights, CoTracker3 from a local hub folder (``repo=PATH`` or torch.hub's own cache
folder). The weights are tiny random ones written here, and the "co-tracker" is a stand-in hubconf.py with the real
call signature and output shapes, so the tests check tvbench's code, not the models.
"""

from __future__ import annotations

import os

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from tvbench.errors import ConfigError, UnavailableError  # noqa: E402
from tvbench.videos.tracking import create_flow, create_tracker, describe_registry  # noqa: E402


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    """An empty torch cache: nothing published is there, as on a machine that never went online."""
    home = tmp_path / "torch-home"
    home.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # so get_dir() follows TORCH_HOME even if set_dir ran before
    assert Path(torch.hub.get_dir()) == home / "hub"
    return home


def _frames(height: int = 64, width: int = 72, shift: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    first = (rng.random((height, width, 3)) * 255).astype(np.uint8)
    return first, np.roll(first, shift, axis=1)


def _random_raft_small(seed: int = 0):
    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(seed)
    return raft_small(weights=None)


# --- RAFT ---

def test_raft_loads_a_state_dict_file_and_pads_sizes_not_divisible_by_8(tmp_path, torch_home):
    path = tmp_path / "raft_small.pth"
    torch.save(_random_raft_small().state_dict(), path)
    flow = create_flow("raft", {"size": "small", "weights": str(path), "iters": "2", "device": "cpu"})
    for height, width in ((64, 75), (130, 136)):  # under RAFT's 128 minimum; over it and not a multiple of 8
        out = flow.flow(*_frames(height, width))
        assert out.shape == (height, width, 2) and out.dtype == np.float32 and np.isfinite(out).all()
    described = flow.describe()
    assert described["name"] == "raft" and described["size"] == "small" and described["device"] == "cpu"
    assert described["weights"].startswith("file sha256:") and len(described["weights"]) == len("file sha256:") + 12
    assert str(tmp_path) not in str(described)  # provenance names the content, not this machine's path


def test_raft_default_weights_come_from_the_torch_cache_without_a_download(torch_home):
    from torchvision.models.optical_flow import Raft_Small_Weights

    cached = torch_home / "hub" / "checkpoints" / Path(Raft_Small_Weights.DEFAULT.url).name
    cached.parent.mkdir(parents=True)
    torch.save(_random_raft_small(1).state_dict(), cached)  # where a first online load would have put them
    flow = create_flow("raft", {"size": "small", "iters": "1", "device": "cpu"})
    assert flow.describe()["weights"] == "Raft_Small_Weights.C_T_V2"
    out = flow.flow(*_frames(32, 40))
    assert out.shape == (32, 40, 2) and np.isfinite(out).all()


def test_raft_without_cached_weights_says_in_one_line_how_to_get_them(torch_home):
    with pytest.raises(UnavailableError) as caught:
        create_flow("raft", {"size": "small"})
    message = str(caught.value)
    assert "\n" not in message and "raft_small_C_T_V2-01064c6d.pth" in message and str(torch_home) in message
    assert ('python -c "from torchvision.models.optical_flow import raft_small, Raft_Small_Weights; '
            'raft_small(weights=Raft_Small_Weights.C_T_V2)"') in message
    assert "weights=PATH" in message
    with pytest.raises(UnavailableError, match="Raft_Large_Weights.C_T_SKHT_V2"):
        create_flow("raft")
    with pytest.raises(UnavailableError, match="raft_small_C_T_V1-ad48884c.pth"):  # the enum's full name works too
        create_flow("raft", {"size": "small", "weights": "Raft_Small_Weights.C_T_V1"})


def test_raft_option_errors_are_one_line_config_errors(tmp_path, torch_home):
    with pytest.raises(ConfigError, match="no such file"):
        create_flow("raft", {"weights": str(tmp_path / "missing.pth")})
    with pytest.raises(ConfigError, match="unknown option 'iterations'; accepted: size, weights, iters, device"):
        create_flow("raft", {"iterations": "4"})
    with pytest.raises(ConfigError, match="size=medium: expected one of large, small"):
        create_flow("raft", {"size": "medium"})
    with pytest.raises(ConfigError, match="C_T_SKHT_V2"):  # a name torchvision does not have lists those it has
        create_flow("raft", {"weights": "SINTEL"})
    with pytest.raises(ConfigError, match="iters=0"):
        create_flow("raft", {"iters": "0"})
    with pytest.raises(ConfigError, match="device=gpu"):
        create_flow("raft", {"device": "gpu"})
    path = tmp_path / "small.pth"
    torch.save(_random_raft_small().state_dict(), path)
    with pytest.raises(ConfigError, match="does not fit raft_large"):
        create_flow("raft", {"size": "large", "weights": str(path), "device": "cpu"})


FAKE_SEA_RAFT = """
import torch
from huggingface_hub import PyTorchModelHubMixin
from utils.utils import shift  # SEA-RAFT's modules import each other by bare names, as here


class RAFT(torch.nn.Module, PyTorchModelHubMixin):
    def __init__(self, args):
        super().__init__()
        self.args = args
        self.bias = torch.nn.Parameter(torch.zeros(2))
        import torchvision.models as models
        models.resnet18(weights="IMAGENET1K_V1")  # the real one downloads ImageNet weights here

    def forward(self, image1, image2, iters=None, test_mode=False):
        assert test_mode and iters == self.args.iters and image1.max() > 1.5  # 0..255 input
        b, _, h, w = image1.shape
        flow = torch.ones(b, 2, h, w) * shift(self.bias)
        return {"flow": [flow], "info": [torch.zeros(b, 4, h, w)]}
"""


def _fake_sea_raft(folder: Path) -> Path:
    (folder / "core" / "utils").mkdir(parents=True)
    (folder / "core" / "raft.py").write_text(FAKE_SEA_RAFT)
    (folder / "core" / "utils" / "__init__.py").write_text("")
    (folder / "core" / "utils" / "utils.py").write_text("def shift(bias):\n    return bias[:, None, None]\n")
    (folder / "config" / "eval").mkdir(parents=True)
    (folder / "config" / "eval" / "spring-M.json").write_text('{"iters": 4, "scale": -1}')
    return folder


def test_sea_raft_from_a_checkout_with_weights_from_a_folder_or_the_hf_cache(tmp_path, torch_home, monkeypatch):
    import sys
    import types

    import torchvision.models

    monkeypatch.setattr(torchvision.models, "resnet18", lambda **kwargs: pytest.fail(f"downloads {kwargs}"))
    repo = _fake_sea_raft(tmp_path / "SEA-RAFT")
    with pytest.raises(UnavailableError, match="git clone https://github.com/princeton-vl/SEA-RAFT"):
        create_flow("sea-raft")
    with pytest.raises(ConfigError, match="config=spring-L: no .*the checkout has spring-M"):
        create_flow("sea-raft", {"repo": str(repo), "config": "spring-L"})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    with pytest.raises(UnavailableError, match="hf download MemorySlices/Tartan-C-T-TSKH-spring540x960-M"):
        create_flow("sea-raft", {"repo": str(repo)})

    # weights saved with the model's own save_pretrained (the mixin the authors publish with), loaded back
    monkeypatch.setattr(torchvision.models, "resnet18", lambda weights=None: None)
    other_utils = types.ModuleType("utils")
    monkeypatch.setitem(sys.modules, "utils", other_utils)
    from tvbench.videos.models import _import_sea_raft

    model = _import_sea_raft(repo)(types.SimpleNamespace(iters=4, scale=-1))
    with torch.no_grad():
        model.bias.copy_(torch.tensor([1.5, -2.0]))
    model.save_pretrained(str(tmp_path / "weights"))
    flow = create_flow("sea-raft", {"repo": str(repo), "weights": str(tmp_path / "weights"), "device": "cpu"})
    assert sys.modules["utils"] is other_utils and "raft" not in sys.modules  # nothing of the checkout leaks
    got = flow.flow_many([_frames(), _frames(shift=1)])
    assert len(got) == 2 and got[0].shape == (64, 72, 2)
    assert np.allclose(got[0][..., 0], 1.5 * 2) and np.allclose(got[0][..., 1], -2.0 * 2)  # scale -1: x2 back
    described = flow.describe()
    assert described["weights"].startswith("folder file sha256:") and described["config"] == "spring-M"


@pytest.mark.skipif(not (Path(os.environ.get("TVBENCH_ORIGINALS", "/nonexistent")) / "sea-raft").is_dir(),
                    reason="no SEA-RAFT checkout under TVBENCH_ORIGINALS")
def test_sea_raft_matches_the_authors_inference_on_their_code(tmp_path, torch_home, monkeypatch):
    """The real checkout, random weights (spring-S): our flow equals their custom.py's calc_flow."""
    import ast

    import torch.nn.functional as F

    repo = Path(os.environ["TVBENCH_ORIGINALS"]) / "sea-raft"
    from tvbench.videos.models import _NoImagenetDownload, _import_sea_raft, _sea_raft_config

    args, _ = _sea_raft_config("test", repo, "spring-S")
    torch.manual_seed(0)
    with _NoImagenetDownload():
        model = _import_sea_raft(repo)(args).eval()
    model.save_pretrained(str(tmp_path / "weights"))
    tree = ast.parse((repo / "custom.py").read_text())
    theirs = {"F": F, "torch": torch}
    exec(compile(ast.Module([n for n in tree.body if isinstance(n, ast.FunctionDef)
                             and n.name in ("forward_flow", "calc_flow")], []), "custom.py", "exec"), theirs)
    flow = create_flow("sea-raft", {"repo": str(repo), "config": "spring-S", "weights": str(tmp_path / "weights"),
                                    "device": "cpu"})
    first, last = _frames(height=256, width=320, shift=4)
    ours = flow.flow(first, last)
    as_tensor = lambda f: torch.from_numpy(f).permute(2, 0, 1)[None].float()  # noqa: E731
    with torch.no_grad():
        expected, _ = theirs["calc_flow"](args, model, as_tensor(first), as_tensor(last))
    diff = np.abs(ours - expected[0].permute(1, 2, 0).numpy()).max()
    print(f"sea-raft against calc_flow: max |diff| {diff:.2e} px")
    assert diff < 1e-4


# --- CoTracker3 ---

FAKE_HUBCONF = '''
"""A stand-in for co-tracker's hubconf.py: CoTracker's call signature and output shapes, known motion."""
import torch

SHIFT = (3.0, -2.0)  # x, y pixels per frame


class Predictor(torch.nn.Module):
    def __init__(self, pretrained):
        super().__init__()
        self.pretrained = pretrained
        self.model = torch.nn.Linear(2, 2)  # the real predictor keeps its network as .model
        self.calls = []

    def forward(self, video, queries=None, segm_mask=None, grid_size=0, grid_query_frame=0,
                backward_tracking=False):
        assert video.ndim == 5 and video.shape[0] == 1 and video.shape[2] == 3 and video.dtype == torch.float32
        self.calls.append((tuple(video.shape), float(video.max()), grid_size))
        _, frames, _, height, width = video.shape
        ys, xs = torch.meshgrid(torch.linspace(2, height - 3, grid_size), torch.linspace(2, width - 3, grid_size),
                                indexing="ij")
        grid = torch.stack([xs, ys], -1).reshape(-1, 2)
        steps = torch.arange(frames, dtype=torch.float32)[:, None, None]
        tracks = grid[None] + steps * torch.tensor(SHIFT)  # (T, N, 2)
        visibility = torch.ones(frames, grid.shape[0], dtype=torch.bool)
        visibility[-1, 0] = False  # point 0 is hidden at the end
        visibility[0, 1] = False  # point 1 is hidden at the start
        return tracks[None], visibility[None]


def cotracker3_offline(*, pretrained=True, **kwargs):
    return Predictor(pretrained)
'''


def _fake_repo(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "hubconf.py").write_text(textwrap.dedent(FAKE_HUBCONF))
    return folder


def _clip(frames: int = 5, height: int = 48, width: int = 64) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [(rng.random((height, width, 3)) * 255).astype(np.uint8) for _ in range(frames)]


def test_cotracker3_from_a_local_repo_maps_first_and_last_frames_and_visibility(tmp_path, torch_home):
    repo = _fake_repo(tmp_path / "co-tracker")
    published = torch_home / "hub" / "checkpoints" / "scaled_offline.pth"
    published.parent.mkdir(parents=True)
    published.write_bytes(b"cached by a first online load")  # the stand-in ignores it; tvbench checks it is there
    tracker = create_tracker("cotracker3", {"repo": str(repo), "grid_size": "6", "device": "cpu"})
    assert tracker.model.pretrained is True  # the published weights, from the cache

    frames = _clip(frames=5)
    tracks = tracker.track(frames)
    assert len(tracks) == 36 and tracks.start.shape == (36, 2) and tracks.end.shape == (36, 2)
    assert tracks.start.dtype == np.float32 and tracks.visible.dtype == bool
    np.testing.assert_allclose(tracks.end - tracks.start, np.tile([[12.0, -8.0]], (36, 1)), atol=1e-5)  # 4 steps
    inside = (tracks.end[:, 0] <= 63) & (tracks.end[:, 1] >= 0)
    assert not tracks.visible[0] and not tracks.visible[1]  # hidden at the end / at the start
    assert (tracks.visible[2:] == inside[2:]).all() and not inside.all() and tracks.visible.sum() > 10
    (shape, top, grid), = tracker.model.calls
    assert shape == (1, 5, 3, 48, 64) and 200 < top <= 255 and grid == 6  # 0..255 floats, the grid asked for

    described = tracker.describe()
    assert described["grid_size"] == 6 and described["points"] == 36 and described["device"] == "cpu"
    assert described["code"] == "repo option" and described["weights"].startswith("published scaled_offline.pth")


def test_cotracker3_loads_torch_hubs_cached_repo_and_a_weights_file(tmp_path, torch_home):
    _fake_repo(torch_home / "hub" / "facebookresearch_co-tracker_main")
    weights = tmp_path / "mine.pth"
    torch.manual_seed(3)
    state = torch.nn.Linear(2, 2).state_dict()
    torch.save(state, weights)
    tracker = create_tracker("cotracker3", {"weights": str(weights), "device": "cpu"})
    assert tracker.model.pretrained is False
    assert torch.equal(tracker.model.model.weight, state["weight"])  # loaded into the predictor's network
    assert tracker.describe()["code"] == "torch hub cache (facebookresearch_co-tracker_main)"
    assert tracker.grid_size == 20 and len(tracker.track(_clip(frames=3, height=64, width=96))) == 400


def test_cotracker3_without_repo_or_cache_says_in_one_line_how_to_get_it(torch_home):
    with pytest.raises(UnavailableError) as caught:
        create_tracker("cotracker3")
    message = str(caught.value)
    assert "\n" not in message and str(torch_home / "hub") in message
    assert "python -c \"import torch; torch.hub.load('facebookresearch/co-tracker', 'cotracker3_offline')\"" in message
    assert "repo=PATH" in message


def test_cotracker3_with_code_but_no_weights_names_the_missing_file(torch_home):
    _fake_repo(torch_home / "hub" / "facebookresearch_co-tracker_main")
    with pytest.raises(UnavailableError) as caught:
        create_tracker("cotracker3")
    message = str(caught.value)
    assert "\n" not in message and "scaled_offline.pth" in message and "weights=FILE" in message


def test_cotracker3_option_errors_come_before_any_loading(tmp_path, torch_home):
    with pytest.raises(ConfigError, match="repo=.*no such folder"):
        create_tracker("cotracker3", {"repo": str(tmp_path / "nowhere")})
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no hubconf.py"):
        create_tracker("cotracker3", {"repo": str(tmp_path / "empty")})
    repo = _fake_repo(tmp_path / "co-tracker")
    with pytest.raises(ConfigError, match="weights=.*no such file"):
        create_tracker("cotracker3", {"repo": str(repo), "weights": str(tmp_path / "missing.pth")})
    with pytest.raises(ConfigError, match="grid_size=abc: expected an integer"):
        create_tracker("cotracker3", {"repo": str(repo), "grid_size": "abc"})
    with pytest.raises(ConfigError, match="accepted: repo, weights, grid_size, device"):
        create_tracker("cotracker3", {"grid": "10"})
    assert "hubconf" not in sys.modules  # nothing was imported from the folder


# --- the registries ---

def test_classical_entries_take_their_options_as_text():
    pytest.importorskip("cv2")
    assert create_tracker("lk").describe()["per_side"] == 24  # as before
    tracker = create_tracker("lk", {"per_side": "12", "fb_max_px": "0.5"})
    assert tracker.per_side == 12 and tracker.fb_max_px == 0.5
    assert create_flow("dis", {"preset": "fast"}).describe() == {"name": "dis", "preset": "fast"}
    with pytest.raises(ConfigError, match="preset=slow: expected one of ultrafast, fast, medium"):
        create_flow("dis", {"preset": "slow"})
    with pytest.raises(ConfigError, match="unknown option 'grid_size'"):
        create_tracker("lk", {"grid_size": "10"})
    with pytest.raises(ConfigError, match="unknown tracker 'tapir'"):
        create_tracker("tapir")


def test_listing_the_registries_does_not_load_torch_models():
    listed = describe_registry()
    assert set(listed["trackers"]) == {"lk", "cotracker3"} and set(listed["flows"]) == {"dis", "raft", "sea-raft"}
    assert set(listed["flows"]["raft"]["options"]) == {"size", "weights", "iters", "device"}
    assert set(listed["trackers"]["cotracker3"]["options"]) == {"repo", "weights", "grid_size", "device"}


def test_importing_the_registries_stays_light():
    import subprocess

    code = "import sys, tvbench.videos.tracking; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_raft_batches_pairs_in_one_pass_and_a_build_runs_with_it(tmp_path, torch_home):
    """flow_many == one pair at a time (float rounding aside); a whole build with the learned flow, batched,
    through the installed CLI, writes cases whose provenance names the weights file."""
    import json

    pytest.importorskip("av")
    from conftest import run_tvbench
    from test_video_build import moving_square_frames
    from tvbench.testing.videos import encode_video

    path = tmp_path / "raft_small.pth"
    torch.save(_random_raft_small().state_dict(), path)
    flow = create_flow("raft", {"size": "small", "weights": str(path), "iters": "2", "device": "cpu"})
    pairs = [_frames(shift=s) for s in (1, 2, 3)]
    batched = flow.flow_many(pairs)
    assert len(batched) == 3 and batched[0].shape == (64, 72, 2)
    for (first, last), got in zip(pairs, batched):
        assert np.allclose(got, flow.flow(first, last), atol=1e-3)
    with pytest.raises(ValueError, match="differ in size"):
        flow.flow_many([pairs[0], _frames(height=72)])

    videos = tmp_path / "videos"
    videos.mkdir()
    encode_video(videos / "square.mp4", moving_square_frames())
    out = tmp_path / "out"
    done = run_tvbench("data", "build", str(videos), str(out), "--strides", "4", "--no-instructions", "--flow",
                       "raft", "--flow-option", f"weights={path}", "--flow-option", "size=small", "--flow-option",
                       "iters=2", "--flow-batch", "3", "--quiet", "--filter-option", "border_max_px=1e9",
                       env={"OMP_NUM_THREADS": "1", "TORCH_HOME": str(torch_home)})
    assert done.returncode == 0, done.stderr
    stats = json.loads((out / "build_stats.json").read_text())
    assert stats["funnel_last_run"]["decoded"] == 4  # 20 frames at stride 4: clips 0-4, 4-8, 8-12, 12-16
    cases = [line for line in (out / "cases.jsonl").read_text().splitlines() if line.strip()]
    assert cases  # random weights: the flow is noise, so the camera-motion filter is turned off above
    for line in cases:
        provenance = json.loads(line)["meta"]["provenance"]
        assert provenance["flow"]["name"] == "raft" and provenance["flow"]["weights"].startswith("file sha256:")


def test_auto_is_the_papers_models_on_a_gpu_and_the_classical_ones_without(monkeypatch, torch_home):
    import tvbench.device
    from tvbench.videos.tracking import check_tracker

    assert type(create_tracker("auto")).__name__ == "LucasKanadeTracker"  # this machine has no GPU
    assert create_flow("auto").name == "dis"
    monkeypatch.setattr(tvbench.device, "resolve_device", lambda spec="auto": "cuda:0")
    with pytest.raises(UnavailableError, match="--tracker-option repo=PATH"):  # cotracker3, code not cached
        create_tracker("auto")
    with pytest.raises(UnavailableError, match="raft"):  # raft, weights not cached
        create_flow("auto")
    with pytest.raises(ConfigError, match="tracker auto: options \\(grid_size\\) need a named tracker"):
        check_tracker("auto", {"grid_size": "10"})


@pytest.mark.skipif(not (Path(os.environ.get("TVBENCH_ORIGINALS", "/nonexistent")) / "co-tracker").is_dir(),
                    reason="no co-tracker checkout under TVBENCH_ORIGINALS")
def test_cotracker3_matches_the_authors_predictor_on_their_code(tmp_path, torch_home):
    """The real checkout, random weights: our tracks (one clip, and two through track_many) equal the predictor's."""
    repo = Path(os.environ["TVBENCH_ORIGINALS"]) / "co-tracker"
    torch.manual_seed(0)
    predictor = torch.hub.load(str(repo), "cotracker3_offline", source="local", pretrained=False).eval()
    torch.save(predictor.model.state_dict(), tmp_path / "random.pth")
    tracker = create_tracker("cotracker3", {"repo": str(repo), "weights": str(tmp_path / "random.pth"),
                                            "grid_size": "4", "device": "cpu"})
    clips = [_clip(5, 64, 96), [np.roll(f, 3, axis=1) for f in _clip(5, 64, 96)]]
    with torch.no_grad():
        expected = [predictor(torch.from_numpy(np.stack(c)).permute(0, 3, 1, 2)[None].float(), grid_size=4)
                    for c in clips]
    for got in (tracker.track(clips[0]), tracker.track_many(clips)[0]):
        assert np.abs(got.start - expected[0][0][0, 0].numpy()).max() < 1e-3
        assert np.abs(got.end - expected[0][0][0, -1].numpy()).max() < 1e-3
    second = tracker.track_many(clips)[1]
    assert np.abs(second.end - expected[1][0][0, -1].numpy()).max() < 1e-3


def test_ls_lists_the_trackers_and_flows_with_their_options():
    from conftest import run_tvbench

    listed = run_tvbench("ls", "trackers", env={"COLUMNS": "200"})
    assert listed.returncode == 0, listed.stderr
    for expected in ("auto", "cotracker3 where a CUDA GPU is seen", "lk", "per_side", "cotracker3", "grid_size"):
        assert expected in listed.stdout, expected
    flows = run_tvbench("ls", "flows", env={"COLUMNS": "200"})
    assert all(name in flows.stdout for name in ("dis", "raft", "sea-raft", "repo, config, weights, device"))
