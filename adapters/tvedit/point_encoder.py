"""The sparse point encoder (paper Sec. 3.3, eq. 2-3): drag point maps -> one token per packed latent patch.

Input: a handle map and a target map, one channel each, at 16x the token grid (VAE factor 8 x 2x2 packing
on both backbones), holding at each rounded point its 1-based pair index and 0 elsewhere. Each map has its
own 3x3 stem (``handle_proj``, ``target_proj``: 1 -> 4 channels, no bias); both then share four stride-2
blocks ``downsample_blocks_vae.{0..3}`` (4 -> 8 -> 16 -> 32 -> 64 channels, each conv1 -> SiLU -> GroupNorm ->
conv2 -> GroupNorm -> SiLU) and a final ``out`` Linear(64, 64). The names, shapes and the order of operations
follow the official state dict (PolyU-VCLab/TVEdit, ``demo/tvedit_qwen/sparse_point_encoder.py``), so its
weights load unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

STEM_CHANNELS = 4
STAGES = 4  # 2**4 = 16 pixels per token


class DownsampleBlock(nn.Module):
    """Halves the resolution and doubles the channels; GroupNorm with min(32, channels) groups."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1, bias=False)
        self.norm1 = nn.GroupNorm(min(32, out_channels), out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(min(32, out_channels), out_channels)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(self.act(self.conv1(x)))
        return self.act(self.norm2(self.conv2(x)))


class SparsePointEncoder(nn.Module):
    """(handle map, target map) -> (handle tokens, target tokens), each ``(B, h*w, 64)`` in row-major order."""

    pixels_per_token = 2**STAGES

    def __init__(self) -> None:
        super().__init__()
        self.handle_proj = nn.Conv2d(1, STEM_CHANNELS, kernel_size=3, padding=1, bias=False)
        self.target_proj = nn.Conv2d(1, STEM_CHANNELS, kernel_size=3, padding=1, bias=False)
        channels = [STEM_CHANNELS * 2**i for i in range(STAGES + 1)]
        self.downsample_blocks_vae = nn.Sequential(*[DownsampleBlock(a, b) for a, b in zip(channels, channels[1:])])
        self.out = nn.Linear(channels[-1], channels[-1])

    @property
    def token_channels(self) -> int:
        return self.out.out_features

    def _tokens(self, stem: torch.Tensor) -> torch.Tensor:
        features = self.downsample_blocks_vae(stem)
        return self.out(features.flatten(2).transpose(1, 2))

    def _stem(self, conv: nn.Conv2d, maps: torch.Tensor) -> torch.Tensor:
        return conv(maps.to(device=conv.weight.device, dtype=conv.weight.dtype))

    def encode_handles(self, maps: torch.Tensor) -> torch.Tensor:
        return self._tokens(self._stem(self.handle_proj, maps))

    def encode_targets(self, maps: torch.Tensor) -> torch.Tensor:
        return self._tokens(self._stem(self.target_proj, maps))

    def forward(self, handle_map: torch.Tensor, target_map: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Maps are ``(B, 1, H, W)`` with H and W multiples of 16; the two may differ in size."""
        handle, target = self._stem(self.handle_proj, handle_map), self._stem(self.target_proj, target_map)
        if handle.shape == target.shape:  # one pass for both, as GroupNorm is per sample
            tokens = self._tokens(torch.cat([handle, target], dim=0))
            return tokens[: handle.shape[0]], tokens[handle.shape[0]:]
        return self._tokens(handle), self._tokens(target)
