"""Deterministic random weights, independent of any library's initialisation code.

The CI regression gate scores with randomly initialised networks (no weights can be downloaded there), so
the same seed must give the same weights on every machine and every timm/lpips release. Each parameter is
drawn from numpy's PCG64 seeded by the seed and the parameter's name, never by parameter order, and scaled
so signals neither vanish nor explode through the layers.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch


def _is_norm_scale(name: str, tensor: torch.Tensor) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    layer_scale = leaf.startswith(("gamma", "lambda")) or leaf == "scale"
    return tensor.ndim == 1 and (layer_scale or ("norm" in name and leaf == "weight"))


@torch.no_grad()
def deterministic_init_(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Overwrite every parameter in place: biases 0, norm and layer scales 1, weights N(0, 1/fan_in)."""
    for name, param in module.named_parameters():
        if name.endswith("bias"):
            values = np.zeros(tuple(param.shape))
        elif _is_norm_scale(name, param):
            values = np.ones(tuple(param.shape))
        else:
            rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
            fan_in = int(np.prod(param.shape[1:])) if param.ndim > 1 else 1
            values = rng.standard_normal(tuple(param.shape)) / np.sqrt(max(fan_in, 1))
        param.copy_(torch.from_numpy(values).to(param.dtype))
    return module
