"""Controller weights on disk: the official torch pickle (read only) and our safetensors file (read and write).

- **Official** (PolyU-VCLab/TVEdit ``demo/tvedit_qwen/tv_edit_model.py``, ``TVEditModel.load_weight``): a
  ``torch.save`` pickle of ``{"point_encoder": state_dict, "casc": state_dict}``; the official loader reads
  ``state["point_encoder"]`` and ``state["casc"]`` and loads each into its module strictly, so any other
  top-level key (a step count, an optimizer state, ...) is ignored. We do the same: both dicts are required and
  loaded strictly, other top-level keys are accepted, left unused, and named in a note (one line on stderr,
  ``extra_keys`` in the loaded controller's ``source``, ``controller_extra_keys`` in the methods' facts). We read
  the file with ``torch.load(..., weights_only=True)`` only: a file holding Python objects other than tensors
  and plain containers, anywhere, is refused in one line (the official torch 2.5 loader would unpickle them).
  It carries no config: the blocks and heads are counted from its names, the widths are read from its shapes,
  and the backbone's sizes come from the pipeline's transformer.
- **Ours**: one safetensors file, tensors named ``point_encoder.<name>`` and ``casc.<name>`` (the same names),
  with the :class:`~.spec.ControllerSpec` as JSON in its metadata. Saving and loading are exact.

A controller reference (``controller=`` option) is a file, a folder holding one weights file (ours is
``controller.safetensors``), or a Hugging Face repository id ``org/name[@revision]`` (``HF_HOME`` and
``HF_HUB_OFFLINE`` are honoured by ``huggingface_hub``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import torch

from tvbench.errors import ConfigError
from tvbench_adapters.tvedit.controller import TVEditController, build_controller
from tvbench_adapters.tvedit.spec import CONTROLLER_LABEL, ControllerSpec

PARTS = ("point_encoder", "casc")
FORMAT = "tvbench-tvedit-controller"
FORMAT_VERSION = "1"
OUR_FILE = "controller.safetensors"
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".ckpt", ".bin")

StateDicts = dict[str, dict[str, torch.Tensor]]


class CheckpointError(ConfigError):
    """A controller file that cannot be used; the message names the file and the problem."""


def _is_safetensors(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def read_official(path: str | Path) -> tuple[StateDicts, list[str]]:
    """The two state dicts of an official pickle, and the names of its other top-level keys (ignored, as the
    official ``TVEditModel.load_weight`` ignores them); nothing but tensors and plain containers is unpickled."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses any object that is not a tensor or a plain container
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a plain tensor checkpoint (refused by weights_only loading: "
                              f"{reason[:200]})") from None
    if not isinstance(payload, Mapping):
        raise CheckpointError(f"{path}: expected a dict with 'point_encoder' and 'casc', got {type(payload).__name__}")
    extra = sorted(str(key) for key in payload if key not in PARTS)
    missing = [key for key in PARTS if key not in payload]
    if missing:
        raise CheckpointError(f"{path}: expected the dicts 'point_encoder' and 'casc'; missing {', '.join(missing)}"
                              + (f" (top-level keys: {', '.join(extra)})" if extra else ""))
    dicts: StateDicts = {}
    for part in PARTS:
        state = payload[part]
        if not isinstance(state, Mapping):
            raise CheckpointError(f"{path}: '{part}' is a {type(state).__name__}, not a state dict")
        for name, value in state.items():
            if not isinstance(name, str) or not isinstance(value, torch.Tensor):
                raise CheckpointError(f"{path}: '{part}' entry {name!r} is a {type(value).__name__}, not a tensor")
        dicts[part] = dict(state)
    return dicts, extra


def read_safetensors_header(path: str | Path) -> tuple[list[str], ControllerSpec | None]:
    """Our file's tensor names, each under point_encoder or casc, and the spec from its metadata when present; reads
    the header only."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            keys = list(handle.keys())
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: unreadable safetensors header ({str(exc).strip()[:200]})") from None
    for key in keys:
        part, _, name = key.partition(".")
        if part not in PARTS or not name:
            raise CheckpointError(f"{path}: tensor {key!r} belongs to neither point_encoder nor casc")
    spec = None
    if "spec" in metadata:
        try:
            spec = ControllerSpec.from_dict(json.loads(metadata["spec"]))
        except (ValueError, TypeError, ConfigError) as exc:
            raise CheckpointError(f"{path}: unreadable controller spec in the metadata ({exc})") from None
    return keys, spec


def read_safetensors(path: str | Path) -> tuple[StateDicts, ControllerSpec | None]:
    """Our file: the two dicts (split on the first dot) and the spec from its metadata, when present."""
    from safetensors import safe_open

    keys, spec = read_safetensors_header(path)
    dicts: StateDicts = {part: {} for part in PARTS}
    with safe_open(str(path), framework="pt") as handle:
        for key in keys:
            part, _, name = key.partition(".")
            dicts[part][name] = handle.get_tensor(key)
    return dicts, spec


def save_controller(controller: TVEditController, path: str | Path) -> Path:
    """Write ``point_encoder.*`` and ``casc.*`` as safetensors, the spec in the metadata (atomic rename, equal
    weights give equal bytes)."""
    return save_state_dicts(controller.state_dicts(), controller.spec, path)


def save_state_dicts(dicts: StateDicts, spec: ControllerSpec, path: str | Path) -> Path:
    """The same file from the two state dicts (e.g. gathered from a sharded training run)."""
    from tvbench.io import atomic_save_safetensors

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path / OUR_FILE
    tensors = {f"{part}.{name}": tensor.detach().contiguous().cpu()
               for part in PARTS for name, tensor in dicts[part].items()}
    atomic_save_safetensors(path, tensors, {"format": FORMAT, "version": FORMAT_VERSION, "spec": spec.to_json()})
    return path


def _count(state: Mapping[str, torch.Tensor], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)\.")
    indices = {int(match.group(1)) for name in state if (match := pattern.match(name))}
    return max(indices) + 1 if indices else 0


def spec_from_state(casc: Mapping[str, torch.Tensor], transformer_config: Mapping[str, Any],
                    backbone: str) -> ControllerSpec:
    """The spec of a config-less (official) checkpoint: counts from its names, the rest from the backbone."""
    blocks, injections = _count(casc, "transformer_blocks"), _count(casc, "controller_blocks")
    if blocks == 0 or injections == 0:
        raise CheckpointError("casc has no transformer_blocks or no controller_blocks: not a TV-Edit controller")
    return ControllerSpec.for_backbone(transformer_config, backbone, blocks=blocks, injections=injections)


def load_state_dicts(controller: TVEditController, dicts: StateDicts, source: str) -> None:
    """Strict loading into both modules; a mismatch is one line naming the first differing tensor."""
    for part in PARTS:
        module = getattr(controller, part)
        expected = module.state_dict()
        given = dicts[part]
        missing = [name for name in expected if name not in given]
        unexpected = [name for name in given if name not in expected]
        if missing or unexpected:
            detail = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
            count = len(missing) + len(unexpected)
            raise CheckpointError(f"{source}: {part} does not match this controller ({detail}"
                                  + (f" and {count - 1} more" if count > 1 else "") + ")")
        for name, tensor in given.items():
            if tuple(tensor.shape) != tuple(expected[name].shape):
                raise CheckpointError(f"{source}: {part}.{name} has shape {tuple(tensor.shape)}, this controller "
                                      f"expects {tuple(expected[name].shape)}")
        module.load_state_dict(given, strict=True)


class ControllerFile(NamedTuple):
    dicts: StateDicts
    spec: ControllerSpec | None  # None: an official file (no config)
    kind: str  # "ours" | "official"
    extra_keys: list[str]  # an official file's ignored top-level keys


def read_controller_file(path: str | Path) -> ControllerFile:
    """Either format, recognised by content: (dicts, spec or None, "ours" | "official", ignored top-level keys)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such controller file")
    if _is_safetensors(path):
        dicts, spec = read_safetensors(path)
        return ControllerFile(dicts, spec, "ours", [])
    dicts, extra = read_official(path)
    return ControllerFile(dicts, None, "official", extra)


def note_extra_keys(path: str | Path, extra: list[str]) -> None:
    """The one-line note for an official file's ignored top-level keys (stderr)."""
    from rich.markup import escape

    from tvbench.progress import stderr

    stderr.print(f"note: {escape(str(path))}: ignored top-level keys {escape(', '.join(extra))} (only "
                 "point_encoder and casc are loaded, as the official TVEditModel.load_weight does)", highlight=False)


def load_controller(ref: str | Path, transformer: Any, *, dtype: torch.dtype | None = None) -> TVEditController:
    """The controller for ``transformer`` (a diffusers Qwen-Image or FLUX transformer) from a file, folder or hub id."""
    from tvbench_adapters.tvedit.spec import backbone_of

    path = resolve_controller(ref)
    dicts, spec, kind, extra = read_controller_file(path)
    backbone = backbone_of(transformer)
    if spec is None:
        spec = spec_from_state(dicts["casc"], transformer.config, backbone)
    else:
        try:
            spec.check_transformer(transformer)
        except ConfigError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
    controller = build_controller(spec)
    load_state_dicts(controller, dicts, str(path))
    controller.source = {"path": str(path), "format": kind}
    if extra:
        controller.source["extra_keys"] = extra
        note_extra_keys(path, extra)
    return controller.to(dtype=dtype) if dtype is not None else controller


def check_controller(ref: str | Path, backbone: str) -> Path:
    """The controller's file, found and its layout read without building anything (our file: the header, whose spec
    must be for ``backbone``; the official pickle: its two dicts), so a bad ``controller=`` fails before the
    backbone loads. What needs the backbone's transformer (the exact shapes) is checked when loading."""
    path = resolve_controller(ref)
    if not _is_safetensors(path):
        read_official(path)
        return path
    _, spec = read_safetensors_header(path)
    if spec is not None and spec.backbone != backbone:
        raise CheckpointError(f"{path}: a controller for the {spec.backbone} backbone, not {backbone}")
    return path


def resolve_controller(ref: str | Path) -> Path:
    """A local weights file for a controller reference: file, folder, or hub id ``org/name[@revision]`` (through
    the HF cache first, then the hub, as every tvbench weight: ``tvbench.features.weights``)."""
    from tvbench.features.weights import resolve_weights

    path = Path(ref).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        return _weights_in_folder(path)
    patterns = [f"*{suffix}" for suffix in WEIGHT_SUFFIXES] + ["*.json"]
    weights = resolve_weights(str(ref), what=CONTROLLER_LABEL, patterns=patterns, fingerprint=False)
    return _weights_in_folder(weights.path)


def _weights_in_folder(folder: Path) -> Path:
    if (folder / OUR_FILE).is_file():
        return folder / OUR_FILE
    candidates = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if len(candidates) != 1:
        found = ", ".join(p.name for p in candidates) or "none"
        raise CheckpointError(f"{folder}: expected {OUR_FILE} or exactly one weights file, found {found}")
    return candidates[0]
