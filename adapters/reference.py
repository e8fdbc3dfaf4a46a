"""Reference methods that bracket every real one: doing nothing, and returning the ground truth."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from tvbench.cases import Case
from tvbench.errors import CaseError
from tvbench.methods.base import Method


@dataclass
class Identity(Method):
    """Returns the source unchanged: the floor any editor must beat on geometry."""

    name = "identity"
    inputs = frozenset({"image"})
    summary = "returns the source image unchanged"

    def edit(self, case: Case, *, seed: int) -> Image.Image:
        return case.open_image("source")


@dataclass
class Oracle(Method):
    """Returns the ground-truth target: the ceiling of every target-referenced metric."""

    name = "oracle"
    inputs = frozenset({"image", "target"})
    summary = "returns the ground-truth target (upper bound; needs targets)"

    def edit(self, case: Case, *, seed: int) -> Image.Image:
        if case.target is None:
            raise CaseError(case.id, "target", "oracle needs a ground-truth target and this case has none")
        return case.open_image("target")
