"""Timestep sampling for training: t ~ Beta(alpha, beta), annealed (paper Sec. 4.1 and Appendix B).

The paper anneals "from Beta(20, 2) to Beta(5, 2) over the first 40K iterations and kept fixed afterwards"
without naming the path. Ours: beta stays 2 and alpha moves **linearly in the optimizer step**,
``alpha(s) = 20 + (5 - 20) * min(s, 40000) / 40000``, so step 0 samples Beta(20, 2) (mean 0.91) and every
step from 40000 on samples Beta(5, 2) (mean 0.71). t is the flow-matching time of the noised latent
``Z_t = (1 - t) Z_0 + t Z_1`` (t = 1: pure noise), the sigma diffusers' pipelines pass as ``timestep / 1000``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BetaSchedule:
    alpha_start: float = 20.0
    alpha_end: float = 5.0
    beta: float = 2.0
    anneal_steps: int = 40_000

    def alpha(self, step: int) -> float:
        if self.anneal_steps <= 0:
            return self.alpha_end
        progress = min(max(step, 0), self.anneal_steps) / self.anneal_steps
        return self.alpha_start + (self.alpha_end - self.alpha_start) * progress

    def parameters(self, step: int) -> tuple[float, float]:
        return self.alpha(step), self.beta

    def sample(self, step: int, rng: np.random.Generator) -> float:
        alpha, beta = self.parameters(step)
        return float(rng.beta(alpha, beta))
