"""The learned entries of the tracking registries: torchvision's RAFT (flow) and CoTracker3 (tracks).

Kept apart from :mod:`tvbench.videos.tracking` so that importing the registries does not load torch. Neither
entry downloads anything: a build may run on many workers at once, on machines without internet, and its
provenance must say which weights made it. Weights come from the torch cache (``$TORCH_HOME/hub``), where the
published files land after one online load, or from a local file given as an option; when neither is there the
error is one line with the command that fetches them once. Cheap checks (options, files, folders, the device) all
run before a network is built.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tvbench.errors import ConfigError, UnavailableError, WeightsUnavailable
from tvbench.videos.tracking import Tracks

if TYPE_CHECKING:
    import torch

STATE_DICT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")


# --- shared helpers ---

def _device(entry: str, spec: str) -> str:
    """tvbench's device rule (``auto`` -> the GPU if any), with the error naming this entry's option."""
    from tvbench.device import resolve_device

    try:
        return resolve_device(spec)
    except ConfigError as exc:
        reason = str(exc).partition(": ")[2] or str(exc)
        raise ConfigError(f"{entry}: option device={spec}: {reason}") from None


def _looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text or text.startswith(("~", ".")) or text.lower().endswith(STATE_DICT_SUFFIXES)


def _existing_file(entry: str, text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_file():
        what = "is a folder, not a state-dict file" if path.is_dir() else "no such file"
        raise ConfigError(f"{entry}: option weights={text}: {what}")
    return path


def sha256_prefix(path: Path, chars: int = 12) -> str:
    """The identity of a weights file in provenance: its content, not its (machine-specific) path."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:chars]


def _read_state_dict(entry: str, path: Path) -> dict:
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or foreign file: one line naming it
        raise ConfigError(f"{entry}: weights file {path} cannot be read as a state dict "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):  # a training checkpoint
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ConfigError(f"{entry}: weights file {path} holds a {type(state).__name__}, not a state dict")
    return state


def _load_into(entry: str, module: "torch.nn.Module", state: dict, path: Path, what: str) -> None:
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise ConfigError(f"{entry}: weights file {path} does not fit {what} ({first[:200]})") from None


def _hub_dir() -> Path:
    """torch.hub's folder ($TORCH_HOME/hub unless set otherwise), read at call time like torch does."""
    import torch.hub

    return Path(torch.hub.get_dir())


def _checkpoint_cache(filename: str) -> Path:
    """Where ``torch.hub.load_state_dict_from_url`` keeps (and first looks for) a downloaded file."""
    return _hub_dir() / "checkpoints" / filename


# --- torchvision RAFT ---

def _raft_weights_enum(size: str):
    from torchvision.models.optical_flow import Raft_Large_Weights, Raft_Small_Weights

    return Raft_Large_Weights if size == "large" else Raft_Small_Weights


def _raft_fetch_command(size: str, member: str) -> str:
    enum = f"Raft_{size.capitalize()}_Weights"
    return (f'python -c "from torchvision.models.optical_flow import raft_{size}, {enum}; '
            f'raft_{size}(weights={enum}.{member})"')


def _padded(side: int, minimum: int) -> int:
    """The smallest size RAFT accepts for a side: a multiple of 8, at least ``minimum``."""
    return max(side + (-side % 8), minimum)


def _batch_padding(entry: str, pairs: list[tuple[np.ndarray, np.ndarray]], minimum: int) -> tuple[int, int, tuple]:
    """(height, width, F.pad amounts) of a batch of (I1, I2) pairs, which must share one size: padded at the right
    and bottom so each side is a multiple of 8 and at least ``minimum``; the flow is cropped back after."""
    shapes = {f.shape for pair in pairs for f in pair}
    if len(shapes) != 1:
        raise ValueError(f"{entry}: frames of a batch differ in size: {sorted(shapes)}")
    height, width = pairs[0][0].shape[:2]
    return height, width, (0, _padded(width, minimum) - width, 0, _padded(height, minimum) - height)


class RaftFlow:
    """torchvision's RAFT from I1 to I2, (H, W, 2) float32 pixels.

    RAFT wants H and W divisible by 8, and at least 128 (its correlation pyramid halves a 1/8-size feature map three
    times): frames are padded (edge pixels repeated) at the right and bottom up to that, and the flow is cropped
    back, so every pixel keeps its coordinates. Inputs go to [-1, 1] as torchvision's OpticalFlow preset
    does; ``iters`` is the number of recurrent updates (torchvision's default 12).
    """

    name = "raft"

    def __init__(self, size: str = "large", weights: str = "DEFAULT", iters: int = 12, device: str = "auto"):
        entry = f"flow raft (size={size})"
        self.size, self.iters = size, iters
        self._file, self._member = self._resolve_weights(entry, size, weights)
        self.device = _device("flow raft", device)
        self.weights = (f"file sha256:{sha256_prefix(self._file)}" if self._file is not None
                        else f"{_raft_weights_enum(size).__name__}.{self._member}")
        self.model = self._build(entry)
        levels = getattr(getattr(self.model, "corr_block", None), "num_levels", 4)
        self._min_side = 8 * 2 * 2 ** (levels - 1)  # torchvision's own lower bound on the input size

    @staticmethod
    def _resolve_weights(entry: str, size: str, weights: str) -> tuple[Path | None, str | None]:
        """(local file, None) or (None, torchvision member name), checked without building anything."""
        if _looks_like_path(weights):
            return _existing_file(entry, weights), None
        enum = _raft_weights_enum(size)
        weights = weights.removeprefix(f"{enum.__name__}.")  # Raft_Small_Weights.C_T_V2 as well as C_T_V2
        members = [m for m in enum.__members__ if m != "DEFAULT"]
        if weights not in enum.__members__:
            raise ConfigError(f"{entry}: option weights={weights}: not a state-dict file path nor one of "
                              f"{enum.__name__}'s names ({', '.join(['DEFAULT'] + members)})")
        member = enum[weights]
        name = next(m for m in members if enum[m] is member)  # DEFAULT -> its real name, for provenance
        cached = _checkpoint_cache(Path(member.url).name)
        if not cached.is_file():
            raise WeightsUnavailable(
                f"{entry}: torchvision's weights {enum.__name__}.{name} are not in the torch cache (missing "
                f"{cached}) and tvbench does not download them during a build",
                spec=f"{enum.__name__}.{name}", fix=f"fetch them once online with {_raft_fetch_command(size, name)}",
                local="state-dict file", option="--flow-option weights=PATH")
        return None, name

    def _build(self, entry: str) -> "torch.nn.Module":
        from torchvision.models.optical_flow import raft_large, raft_small

        builder = raft_large if self.size == "large" else raft_small
        if self._file is None:  # the cached file checked above: torchvision loads it without a download
            model = builder(weights=_raft_weights_enum(self.size)[self._member])
        else:
            model = builder(weights=None)
            _load_into(entry, model, _read_state_dict(entry, self._file), self._file, f"raft_{self.size}")
        return model.eval().to(self.device)

    def describe(self) -> dict:
        return {"name": self.name, "size": self.size, "weights": self.weights, "iters": self.iters,
                "device": self.device}

    def _tensor(self, frame: np.ndarray) -> "torch.Tensor":
        import torch

        image = torch.from_numpy(np.ascontiguousarray(frame)).to(self.device)
        return image.permute(2, 0, 1)[None].float() / 127.5 - 1.0  # uint8 RGB -> [-1, 1], as the preset does

    def flow(self, first: np.ndarray, last: np.ndarray) -> np.ndarray:
        return self.flow_many([(first, last)])[0]

    def flow_many(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """The flows of several (I1, I2) pairs of one size in one batch: one forward pass on the GPU for all."""
        import torch
        import torch.nn.functional as F

        height, width, pad = _batch_padding("raft", pairs, self._min_side)
        with torch.no_grad():
            a, b = (F.pad(torch.cat([self._tensor(pair[i]) for pair in pairs]), pad, mode="replicate")
                    for i in (0, 1))
            flows = self.model(a, b, num_flow_updates=self.iters)[-1][:, :, :height, :width].permute(0, 2, 3, 1)
        return list(flows.float().cpu().numpy().astype(np.float32, copy=False))


# --- CoTracker3 (torch.hub code from its authors) ---

COTRACKER_HUB = "facebookresearch/co-tracker"
COTRACKER_ENTRY = "cotracker3_offline"
COTRACKER_CHECKPOINT = "scaled_offline.pth"  # the name its hubconf downloads to $TORCH_HOME/hub/checkpoints
COTRACKER_FETCH = f"python -c \"import torch; torch.hub.load('{COTRACKER_HUB}', '{COTRACKER_ENTRY}')\""
DEFAULT_GRID_SIZE = 20  # 400 points: lk's 24 per longer side gives 336 (16:9) to 432 (4:3)


def _cotracker_repo(repo: str | None) -> tuple[Path, str]:
    """The co-tracker code to load with source="local": the ``repo`` option, else torch.hub's own cached copy."""
    entry = "tracker cotracker3"
    if repo is not None:
        path = Path(repo).expanduser()
        if not path.is_dir():
            raise ConfigError(f"{entry}: option repo={repo}: no such folder")
        if not (path / "hubconf.py").is_file():
            raise ConfigError(f"{entry}: option repo={repo}: no hubconf.py in it (give the co-tracker checkout's "
                              "top folder)")
        return path, "repo option"
    owner, name = COTRACKER_HUB.split("/")
    for branch in ("main", "master"):  # the folder names torch.hub gives its downloads
        cached = _hub_dir() / f"{owner}_{name}_{branch}"
        if (cached / "hubconf.py").is_file():
            return cached, f"torch hub cache ({cached.name})"
    raise WeightsUnavailable(
        f"{entry}: the CoTracker3 code and weights are not in the torch hub cache ({_hub_dir()}) and tvbench does "
        "not download them during a build", spec=COTRACKER_HUB, fix=f"fetch them once online with {COTRACKER_FETCH}",
        local="co-tracker checkout", option="--tracker-option repo=PATH (and weights=FILE)")


def _cotracker_weights(weights: str | None) -> tuple[Path, bool]:
    """(the weights file, whether it is the published one in the torch cache), checked before loading the code."""
    entry = "tracker cotracker3"
    if weights is not None and weights != "DEFAULT":
        return _existing_file(entry, weights), False
    cached = _checkpoint_cache(COTRACKER_CHECKPOINT)
    if not cached.is_file():
        raise WeightsUnavailable(
            f"{entry}: the CoTracker3 weights are not in the torch cache (missing {cached}) and tvbench does not "
            "download them during a build", spec=COTRACKER_CHECKPOINT,
            fix=f"fetch them once online with {COTRACKER_FETCH}", local="state-dict file",
            option="--tracker-option weights=FILE")
    return cached, True


class CoTracker3Tracker:
    """CoTracker3 (offline model) on a ``grid_size`` x ``grid_size`` grid placed on the clip's first frame.

    The whole clip is one call (the offline model sees every frame at once, resized internally to 512x384). A track
    is kept (``visible``) when the model marks it visible on the first and the last frame and its end lies inside
    the frame: the paper drops points that are not visible at the end, and an end outside the image is no target.
    """

    name = "cotracker3"

    def __init__(self, repo: str | None = None, weights: str | None = None, grid_size: int = DEFAULT_GRID_SIZE,
                 device: str = "auto"):
        self.grid_size = grid_size
        self.repo, self.code = _cotracker_repo(repo)
        self._file, published = _cotracker_weights(weights)
        self.device = _device("tracker cotracker3", device)
        kind = "published scaled_offline.pth" if published else "file"
        self.weights = f"{kind} sha256:{sha256_prefix(self._file)}"
        self.model = self._load(published)

    def _load(self, published: bool) -> "torch.nn.Module":
        import torch

        entry = "tracker cotracker3"
        try:  # source="local": torch.hub imports hubconf.py from the folder and never goes online for the code
            model = torch.hub.load(str(self.repo), COTRACKER_ENTRY, source="local", pretrained=published)
        except (ImportError, AttributeError, RuntimeError) as exc:
            text = str(exc).splitlines()[0] if str(exc) else ""
            raise UnavailableError(f"{entry}: loading {COTRACKER_ENTRY} from {self.repo} failed "
                                   f"({type(exc).__name__}: {text})") from None
        if not published:
            target = getattr(model, "model", model)  # the predictor wraps the network as .model
            _load_into(entry, target, _read_state_dict(entry, self._file), self._file, COTRACKER_ENTRY)
        return model.eval().to(self.device)

    def describe(self) -> dict:
        return {"name": self.name, "model": COTRACKER_ENTRY, "code": self.code,
                "hubconf_sha256": sha256_prefix(self.repo / "hubconf.py"), "weights": self.weights,
                "grid_size": self.grid_size, "points": self.grid_size ** 2, "device": self.device}

    def _video(self, frames: list[np.ndarray]) -> "torch.Tensor":
        import torch

        video = torch.from_numpy(np.ascontiguousarray(np.stack(frames))).to(self.device)  # (T, H, W, 3) uint8
        return video.permute(0, 3, 1, 2)[None].float()  # (1, T, 3, H, W) in 0..255, as the model expects

    def track_many(self, clips: list[list[np.ndarray]]) -> list[Tracks]:
        """One clip a call: the authors' predictor takes one video at a time (a batch of two fails in
        cotracker3_offline.py, and predictor.py says "TODO: batchify"; seen on co-tracker 82e02e8)."""
        return [self.track(frames) for frames in clips]

    def track(self, frames: list[np.ndarray]) -> Tracks:
        import torch

        height, width = frames[0].shape[:2]
        with torch.no_grad():
            tracks, visibility = self.model(self._video(frames), grid_size=self.grid_size)
        tracks = tracks[0].float().cpu().numpy()  # (T, N, 2) x, y pixels
        visibility = visibility[0].cpu().numpy().astype(bool)
        if visibility.ndim == 3:  # (T, N, 1), as some versions document it
            visibility = visibility[..., 0]
        start, end = tracks[0].astype(np.float32), tracks[-1].astype(np.float32)
        inside = (end[:, 0] >= 0) & (end[:, 0] <= width - 1) & (end[:, 1] >= 0) & (end[:, 1] <= height - 1)
        return Tracks(start, end, visibility[0] & visibility[-1] & inside)


# --- SEA-RAFT (the paper's flow; code from a checkout of its authors' repository) ---

SEA_RAFT_GIT = "https://github.com/princeton-vl/SEA-RAFT"
SEA_RAFT_WEIGHTS = "MemorySlices/Tartan-C-T-TSKH-spring540x960-M"  # the README's example, with config spring-M
SEA_RAFT_MODULES = ("raft", "update", "corr", "extractor", "layer", "utils", "utils.utils")


def _sea_raft_config(entry: str, repo: Path, config: str):
    """The model's arguments: ``config/eval/<name>.json`` of the checkout, or a JSON file."""
    import argparse
    import json

    path = Path(config).expanduser() if config.endswith(".json") else repo / "config" / "eval" / f"{config}.json"
    if not path.is_file():
        known = sorted(p.stem for p in (repo / "config" / "eval").glob("*.json"))
        raise ConfigError(f"{entry}: option config={config}: no {path} (the checkout has {', '.join(known) or 'none'})")
    try:
        return argparse.Namespace(**json.loads(path.read_text())), path
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{entry}: config {path} is not a JSON object ({exc})") from None


def _import_sea_raft(repo: Path):
    """SEA-RAFT's ``RAFT`` class from ``repo/core``, whose modules import each other by bare names (``utils``,
    ``layer``, ...). They are imported with ``core`` first on the path and then taken out of ``sys.modules`` again,
    with whatever held those names put back, so no other ``utils`` is shadowed afterwards."""
    import importlib
    import sys

    saved = {name: sys.modules.pop(name) for name in SEA_RAFT_MODULES if name in sys.modules}
    sys.path.insert(0, str(repo / "core"))
    try:
        return importlib.import_module("raft").RAFT
    finally:
        sys.path.remove(str(repo / "core"))
        for name in SEA_RAFT_MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


class _NoImagenetDownload:
    """SEA-RAFT's encoders load torchvision's ImageNet ResNet weights when built, a download that fails offline;
    the checkpoint overwrites them at once, so while the model is built the ResNet builders get no weights."""

    def __enter__(self):
        import torchvision.models as models

        self._saved = {name: getattr(models, name) for name in ("resnet18", "resnet34")}
        for name, builder in self._saved.items():
            setattr(models, name, lambda *args, _builder=builder, **kwargs: _builder(weights=None))
        return self

    def __exit__(self, *exc) -> None:
        import torchvision.models as models

        for name, builder in self._saved.items():
            setattr(models, name, builder)


class SeaRaftFlow:
    """SEA-RAFT from I1 to I2 as its authors' ``custom.py`` computes it: images in 0..255, scaled by
    ``2 ** scale`` first (the Spring configs: half size), ``iters`` updates, the last flow scaled back.

    The code is a checkout (``repo``; it is not on PyPI); the weights a Hugging Face id already in the HF cache
    (the authors publish them under ``MemorySlices/``), a ``save_pretrained`` folder or a state-dict file. Frames
    are padded (edge pixels repeated) so the smallest feature map keeps a pixel at the coarsest correlation level,
    and the flow cropped back.
    """

    name = "sea-raft"

    def __init__(self, repo: str | None = None, config: str = "spring-M", weights: str = SEA_RAFT_WEIGHTS,
                 device: str = "auto"):
        entry = "flow sea-raft"
        if not repo:
            raise UnavailableError(f"{entry}: SEA-RAFT's code is not on PyPI: git clone {SEA_RAFT_GIT} once and "
                                   "pass --flow-option repo=PATH")
        self.repo = Path(repo).expanduser()
        if not (self.repo / "core" / "raft.py").is_file():
            what = "no such folder" if not self.repo.is_dir() else "no core/raft.py in it"
            raise ConfigError(f"{entry}: option repo={repo}: {what} (give a checkout of {SEA_RAFT_GIT})")
        self.args, self.config_path = _sea_raft_config(entry, self.repo, config)
        self.config = config
        self._source, self.weights = self._resolve_weights(entry, weights)
        self.device = _device(entry, device)
        self.model = self._build(entry)
        scale = float(getattr(self.args, "scale", 0))
        self._min_side = int(np.ceil(8 * 2 ** 4 / 2 ** scale))  # 1/8 features, halved 4 times by the pyramid

    @staticmethod
    def _resolve_weights(entry: str, weights: str) -> tuple[Path, str]:
        """(a folder or file, its provenance), found without a network."""
        import re

        path = Path(weights).expanduser()
        hub_id = re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", weights) and not weights.endswith(STATE_DICT_SUFFIXES)
        if path.exists() or not hub_id:
            if path.is_dir():
                files = sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin"))
                if not files:
                    raise ConfigError(f"{entry}: option weights={weights}: a folder without model weights")
                return path, f"folder file sha256:{sha256_prefix(files[0])}"
            return _existing_file(entry, weights), f"file sha256:{sha256_prefix(path)}"
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            folder = Path(snapshot_download(weights, local_files_only=True))
        except (LocalEntryNotFoundError, FileNotFoundError, ValueError):
            raise WeightsUnavailable(
                f"{entry}: {weights} is not in the Hugging Face cache and tvbench does not download during a build",
                spec=weights, fix=f"fetch it once online with `hf download {weights}`", local="folder or file",
                option="--flow-option weights=PATH") from None
        return folder, f"hf:{weights}@{folder.name}"

    def _build(self, entry: str) -> "torch.nn.Module":
        raft = _import_sea_raft(self.repo)
        with _NoImagenetDownload():
            if self._source.is_dir():
                model = raft.from_pretrained(str(self._source), args=self.args)
            else:
                model = raft(self.args)
                _load_into(entry, model, _read_state_dict(entry, self._source), self._source, "SEA-RAFT")
        return model.eval().to(self.device)

    def describe(self) -> dict:
        return {"name": self.name, "config": self.config, "weights": self.weights, "iters": self.args.iters,
                "scale": getattr(self.args, "scale", 0), "device": self.device}

    def flow(self, first: np.ndarray, last: np.ndarray) -> np.ndarray:
        return self.flow_many([(first, last)])[0]

    def flow_many(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        import torch
        import torch.nn.functional as F

        height, width, pad = _batch_padding("sea-raft", pairs, self._min_side)
        scale = 2 ** float(getattr(self.args, "scale", 0))

        def batch(i: int) -> "torch.Tensor":
            frames = torch.stack([torch.from_numpy(np.ascontiguousarray(pair[i])) for pair in pairs]).to(self.device)
            padded = F.pad(frames.permute(0, 3, 1, 2).float(), pad, mode="replicate")
            return F.interpolate(padded, scale_factor=scale, mode="bilinear", align_corners=False)

        with torch.no_grad():
            out = self.model(batch(0), batch(1), iters=self.args.iters, test_mode=True)["flow"][-1]
            out = F.interpolate(out, scale_factor=1 / scale, mode="bilinear", align_corners=False) / scale
            out = out[:, :, :height, :width].permute(0, 2, 3, 1)
        return list(out.float().cpu().numpy().astype(np.float32, copy=False))
