"""Seconds per phase of one edit (LoRA, inversion, drag, denoise), with the GPU's queue drained at each boundary."""

from __future__ import annotations

import contextlib
import time
from typing import Iterator


class PhaseTimer:
    """Accumulates wall-clock seconds per named phase; a phase may be entered several times (GoodDrag alternates)."""

    def __init__(self, device: str = "cpu"):
        self.cuda = str(device).startswith("cuda")
        self.seconds: dict[str, float] = {}

    def _sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def drop(self, name: str) -> None:
        self.seconds.pop(name, None)

    def rounded(self) -> dict[str, float]:
        return {name: round(value, 4) for name, value in self.seconds.items()}
