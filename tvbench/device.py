"""Device and precision: one place that turns ``--device`` / ``--dtype`` text into torch objects.

Both ``tvbench run`` (editing methods) and ``tvbench score`` (feature networks) resolve their device here,
up front, so asking for ``cuda`` on a machine without a GPU is one line before any model loads, not a
driver error fifteen seconds in. torch is imported inside the functions: the CLI imports this module
for commands that never touch a network.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tvbench.errors import ConfigError

if TYPE_CHECKING:
    import torch

DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16"}


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return backend is not None and backend.is_available()


def resolve_device(spec: str = "auto") -> str:
    """``auto`` -> this process's GPU (``cuda:LOCAL_RANK`` under a launcher), else ``mps``, else ``cpu``.

    An explicit device that this machine does not have is a :class:`ConfigError` naming what it does have.
    """
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        count = _cuda_count()
        if count:
            return f"cuda:{int(os.environ.get('LOCAL_RANK', 0)) % count}"
        return "mps" if _mps_available() else "cpu"
    if spec == "cpu":
        return "cpu"
    if spec == "mps":
        if not _mps_available():
            raise ConfigError("--device mps: this machine has no MPS (Apple GPU) backend; use --device cpu or auto")
        return "mps"
    if spec == "cuda" or spec.startswith("cuda:"):
        count = _cuda_count()
        if not count:
            raise ConfigError(f"--device {spec}: no CUDA GPU is visible here (torch.cuda.is_available() is False); "
                              "use --device cpu or auto")
        index_text = spec.partition(":")[2] or "0"
        if not index_text.isdigit() or int(index_text) >= count:
            raise ConfigError(f"--device {spec}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
        return f"cuda:{int(index_text)}"
    raise ConfigError(f"--device {spec!r}: choose auto, cpu, cuda, cuda:N or mps")


def dtype_name(spec: str) -> str:
    """The canonical name (``float32``, ``bfloat16``, ``float16``) of a ``--dtype`` value."""
    try:
        return DTYPES[spec.strip().lower()]
    except KeyError:
        raise ConfigError(f"--dtype {spec!r}: choose float32, bfloat16 or float16") from None


def torch_dtype(spec: str) -> "torch.dtype":
    import torch

    return getattr(torch, dtype_name(spec))


def torch_device(spec: str = "auto") -> "torch.device":
    import torch

    return torch.device(resolve_device(spec))


def release_memory() -> None:
    """Return freed GPU memory to the driver after a model is dropped (a no-op where torch is not loaded)."""
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
