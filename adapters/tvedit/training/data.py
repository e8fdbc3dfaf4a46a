"""Training pairs from a tvbench benchmark, and the order in which a run visits them.

One case is one training pair (source, drag points, instruction) -> target. With ``bidirectional`` each case
also gives the backward pair of the paper's sample groups (Sec. 3.2: (I1, p1 -> p2, T1) -> I2 and
(I2, p2 -> p1, T2) -> I1): source and target swap, the drag reverses, and T2 is read from the case's
``meta["reverse_instruction"]`` (the key is the ``reverse_key`` option). A case without a target, an
instruction, drag points or (when bidirectional) that key is refused with one line naming it.

Order: the pairs are shuffled once per epoch with a permutation seeded by ``(seed, epoch)``; sample ``p`` of
the run (counted over all processes and accumulation steps) is pair ``perm[epoch][p % n]`` with
``epoch = p // n``. The order is a function of the seed and the position only, so a resumed run, or one split
over another number of processes, visits exactly the same pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image

from tvbench.cases import Case, ImageRef
from tvbench.errors import ConfigError

REVERSE_KEY = "reverse_instruction"
REVERSE_SUFFIX = "~reverse"


@dataclass(frozen=True)
class TrainingPair:
    id: str
    source: ImageRef
    target: ImageRef
    instruction: str
    pairs: tuple[tuple[float, float, float, float], ...]  # in the pixels of ``source``


def _size(ref: ImageRef) -> tuple[int, int]:
    import io

    with Image.open(io.BytesIO(ref.read_bytes())) as image:  # the header only
        return image.size


def _check(case: Case, bidirectional: bool, reverse_key: str) -> None:
    problems = []
    if case.target is None:
        problems.append("no target image")
    if not case.instruction:
        problems.append("no instruction")
    if not case.points:
        problems.append("no drag points")
    if bidirectional and not isinstance((case.meta or {}).get(reverse_key), str):
        problems.append(f"no meta[{reverse_key!r}] (the backward instruction T2) for --bidirectional")
    if problems:
        raise ConfigError(f"case {case.id!r}: cannot train on it: {'; '.join(problems)}")


def training_pairs(cases: Sequence[Case], *, bidirectional: bool = False,
                   reverse_key: str = REVERSE_KEY) -> list[TrainingPair]:
    """Forward pairs (and backward ones when ``bidirectional``), in the benchmark's order."""
    result = []
    for case in cases:
        _check(case, bidirectional, reverse_key)
        points = tuple(tuple(float(v) for v in p) for p in case.points)
        result.append(TrainingPair(case.id, case.source, case.target, case.instruction, points))  # type: ignore[arg-type]
        if bidirectional:
            (source_w, source_h), (target_w, target_h) = _size(case.source), _size(case.target)  # type: ignore[arg-type]
            sx, sy = target_w / source_w, target_h / source_h  # points live in source pixels; the target may differ
            backward = tuple((tx * sx, ty * sy, hx * sx, hy * sy) for hx, hy, tx, ty in points)
            result.append(TrainingPair(case.id + REVERSE_SUFFIX, case.target, case.source,  # type: ignore[arg-type]
                                       case.meta[reverse_key], backward))
    return result


def split_holdout(cases: Sequence[Case], count: int) -> tuple[list[Case], list[Case]]:
    """(training cases, held-out validation cases): the last ``count`` cases by id are held out."""
    if count < 0 or count >= len(cases):
        raise ConfigError(f"--val-cases {count}: must be between 0 and {len(cases) - 1} for {len(cases)} cases")
    held = set(sorted(case.id for case in cases)[len(cases) - count:]) if count else set()
    return [c for c in cases if c.id not in held], [c for c in cases if c.id in held]


class SampleOrder:
    """Which pair is global sample ``position``; stateless, so resuming needs only the position."""

    def __init__(self, count: int, seed: int):
        if count == 0:
            raise ConfigError("no training pairs")
        self.count, self.seed = count, seed
        self._epoch, self._perm = -1, np.arange(count)

    def __getitem__(self, position: int) -> int:
        epoch = position // self.count
        if epoch != self._epoch:
            self._epoch, self._perm = epoch, np.random.default_rng([self.seed, epoch]).permutation(self.count)
        return int(self._perm[position % self.count])
