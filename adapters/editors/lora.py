"""LoRA files on an editing pipeline's transformer: find, normalise the key layout, load, and prove it took.

diffusers loads a LoRA whose keys it does not recognise as *nothing*, with a warning only: a PEFT file saved
without the ``transformer.`` prefix leaves the model unchanged and every edit silently equals the base
model's. So every load here is checked: the adapter must be listed as active on the transformer, it must
have put LoRA layers on at least as many modules as the file names, and their up-projections must not be all
zero. Otherwise the setup fails with one line naming the file and what is wrong.

Key layouts accepted (the transformer's module names after the prefix):

- diffusers: ``transformer.<module>.lora_A.weight`` / ``lora_B.weight`` (``save_lora_weights``);
- lightx2v / ComfyUI: ``diffusion_model.<module>.lora_down.weight`` / ``lora_up.weight`` / ``alpha``
  (diffusers converts them itself);
- PEFT ``save_pretrained``: ``base_model.model.<module>.lora_A.weight``: renamed to ``transformer.<module>``,
  the same renaming MotionEdit's own ``inference/convert_to_diffusers_lora.py`` applies;
- bare: ``<module>.lora_A.weight`` where ``<module>`` starts with one of the transformer's children
  (``transformer_blocks``, ...): prefixed with ``transformer.``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from tvbench.errors import ConfigError, UnavailableError

KNOWN_PREFIXES = ("transformer.", "diffusion_model.", "lora_unet_", "lora_transformer_")
PEFT_PREFIX = "base_model.model."
_DOWN = re.compile(r"^(?P<module>.+?)\.(lora_A|lora_down|lora\.down)(\.[A-Za-z0-9_]+)?\.weight$")


@dataclass(frozen=True)
class LoadedLora:
    adapter: str
    file: str
    layout: str  # "diffusers", "lightx2v", "peft", "bare" or "other"
    layers: int  # LoRA layers diffusers put on the transformer


def resolve_lora_file(spec: str, what: str) -> Path:
    """A local ``.safetensors`` file, or ``org/name/path/in/repo.safetensors`` from the hub (cache first).

    Hub files go through ``huggingface_hub.hf_hub_download``, which honours ``HF_HOME``, ``HF_TOKEN`` and
    ``HF_HUB_OFFLINE``.
    """
    from tvbench.features.weights import require_existing

    path = Path(os.path.expanduser(spec))
    if path.is_file():
        return path
    require_existing(spec, what)
    parts = spec.split("/")
    if path.is_absolute() or spec.startswith(".") or len(parts) < 3 or not all(parts):
        raise ConfigError(f"{what}: {spec} is not a file (give a .safetensors path, or org/name/file.safetensors "
                          "on the Hugging Face hub)")
    repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:])
    return Path(_hub_file(spec, repo_id, filename, what))


def _hub_file(spec: str, repo_id: str, filename: str, what: str) -> str:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    from tvbench.features.weights import download_command, hub_unavailable

    try:
        return hf_hub_download(repo_id, filename, local_files_only=True)
    except (LocalEntryNotFoundError, EntryNotFoundError, OSError, ValueError):
        pass  # not cached yet
    try:
        return hf_hub_download(repo_id, filename)
    except LocalEntryNotFoundError as exc:  # first: it subclasses EntryNotFoundError
        raise hub_unavailable(exc, what=what, spec=spec, repo_id=repo_id, local="file",
                              download=download_command(repo_id, filename=filename)) from None
    except EntryNotFoundError:
        raise UnavailableError(f"{what}: {repo_id} has no file {filename}") from None
    except (OSError, ValueError) as exc:
        raise hub_unavailable(exc, what=what, spec=spec, repo_id=repo_id, local="file",
                              download=download_command(repo_id, filename=filename)) from None


def check_lora_file(spec: str, what: str) -> Path:
    """Resolve a LoRA file and read only its header: safetensors naming LoRA matrices (before any model loads)."""
    from safetensors import SafetensorError, safe_open

    path = resolve_lora_file(spec, what)
    _require_safetensors(path, what)
    try:
        with safe_open(str(path), framework="numpy") as handle:
            keys = list(handle.keys())
    except (SafetensorError, OSError, ValueError) as exc:
        raise ConfigError(f"{what}: cannot read {path} ({str(exc).splitlines()[0]})") from None
    _require_lora_matrices(path, keys, what)
    return path


def _require_safetensors(path: Path, what: str) -> None:
    if path.suffix != ".safetensors":
        raise ConfigError(f"{what}: {path} is not a .safetensors file (pickled LoRA files are not loaded)")


def _require_lora_matrices(path: Path, keys: Iterable[str], what: str) -> int:
    """How many modules the file adapts; none is refused."""
    expected = len(file_modules(keys))
    if expected == 0:
        raise ConfigError(f"{what}: {path.name} holds no LoRA matrices (no *.lora_A/lora_down weights)")
    return expected


def read_state_dict(path: Path, what: str) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    _require_safetensors(path, what)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ConfigError(f"{what}: cannot read {path} ({str(exc).splitlines()[0]})") from None


def normalise_keys(state_dict: dict[str, Any], children: set[str]) -> tuple[dict[str, Any], str]:
    """Rename PEFT and bare keys to diffusers' ``transformer.`` layout; report which layout the file had."""
    keys = list(state_dict)
    if any(key.startswith("transformer.") for key in keys):
        return state_dict, "diffusers"
    if any(key.startswith("diffusion_model.") for key in keys):
        return state_dict, "lightx2v"
    if any(key.startswith(prefix) for key in keys for prefix in KNOWN_PREFIXES):
        return state_dict, "other"
    if all(key.startswith(PEFT_PREFIX) for key in keys):
        return {"transformer." + key[len(PEFT_PREFIX):]: value for key, value in state_dict.items()}, "peft"
    if keys and all(key.split(".", 1)[0] in children for key in keys):
        return {"transformer." + key: value for key, value in state_dict.items()}, "bare"
    return state_dict, "other"


def file_modules(keys: Iterable[str]) -> set[str]:
    """The modules a LoRA file adapts (one per down/A matrix), from its tensor names (or its state dict)."""
    return {match.group("module") for key in keys if (match := _DOWN.match(key))}


def adapter_layers(transformer: Any, adapter: str) -> tuple[int, bool]:
    """(number of LoRA layers of ``adapter`` on ``transformer``, whether any of their up matrices is non-zero)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    count, nonzero = 0, False
    for module in transformer.modules():
        if isinstance(module, BaseTunerLayer) and adapter in getattr(module, "lora_A", {}):
            count += 1
            up = module.lora_B[adapter].weight
            nonzero = nonzero or bool(up.detach().abs().sum() > 0)
    return count, nonzero


def load_lora(pipe: Any, spec: str, *, adapter: str, what: str) -> LoadedLora:
    """Load a LoRA file onto ``pipe.transformer`` as ``adapter`` (not yet weighted: see :func:`activate`)."""
    path = resolve_lora_file(spec, what)
    raw = read_state_dict(path, what)
    children = {name for name, _ in pipe.transformer.named_children()}
    state_dict, layout = normalise_keys(raw, children)
    expected = _require_lora_matrices(path, raw, what)
    try:
        pipe.load_lora_weights(state_dict, adapter_name=adapter)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise ConfigError(f"{what}: {path.name} does not fit this model's transformer "
                          f"({type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]})") from None
    layers, nonzero = adapter_layers(pipe.transformer, adapter)
    listed = adapter in pipe.get_list_adapters().get("transformer", [])
    if not listed or layers == 0:
        raise ConfigError(f"{what}: {path.name} changed nothing: none of its {expected} modules matched the "
                          f"transformer (key layout {layout!r}, e.g. {next(iter(raw))}); diffusers ignores "
                          "unknown keys with only a warning, so this run is refused")
    if layers < expected:
        raise ConfigError(f"{what}: {path.name} matched only {layers} of its {expected} modules on the transformer "
                          f"(key layout {layout!r}); a partly applied LoRA is refused")
    if not nonzero:
        raise ConfigError(f"{what}: {path.name} has all-zero up matrices: it would not change the model")
    return LoadedLora(adapter, str(path), layout, layers)


def activate(pipe: Any, weights: dict[str, float]) -> None:
    """Make exactly these adapters active on the transformer, with these scales."""
    if weights:
        pipe.set_adapters(list(weights), adapter_weights=list(weights.values()))
