"""The edit context: what a metric sees of one edit (the case, the edit at the source's size, the case's images
decoded once, and features from the networks the scorer loaded)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Protocol, Sequence

import numpy as np
from PIL import Image

from tvbench.cases import Case, ImageRef
from tvbench.errors import ConfigError

if TYPE_CHECKING:
    from tvbench.features import FeatureStore, LpipsModel


class Networks(Protocol):
    """What the context reads from the scorer that loaded the networks (:class:`tvbench.scoring.scorer.Scorer`)."""

    lpips: "LpipsModel | None"
    dift: object | None

    @property
    def match_resolution(self) -> int: ...

    def dift_features(self, image: Image.Image, prompt: str): ...


class CaseImages:
    """A case's images, each decoded once and shared by every method's edit of the case."""

    def __init__(self, case: Case, siblings: Sequence[Case] = ()):
        self.case = case
        self.siblings = tuple(siblings)  # the other cases of the case's group, for sub-task metrics
        self._decoded: dict[str, Image.Image] = {}
        self._masks: dict[str, np.ndarray] = {}
        self._others: dict[tuple[str, str], Image.Image] = {}

    def get(self, role: str) -> Image.Image:
        if role not in self._decoded:
            self._decoded[role] = self.case.open_image(role)
        return self._decoded[role]

    def mask(self, role: str) -> np.ndarray:
        """A mask ("mask_source" or "mask_target") as a boolean array, decoded once."""
        if role not in self._masks:
            self._masks[role] = self.case.open_mask(role)
        return self._masks[role]

    def of(self, case: Case, role: str) -> Image.Image:
        """An image of another case (a sibling's target), decoded once for every method's edit of this case."""
        if case.id == self.case.id:
            return self.get(role)
        key = (case.id, role)
        if key not in self._others:
            self._others[key] = case.open_image(role)
        return self._others[key]


class EditContext:
    """What a metric sees: the case, the edit (at the source's size), lazily decoded images and features."""

    def __init__(self, case: Case, edit: Image.Image, images: CaseImages, scorer: Networks,
                 store: "FeatureStore | None", original: Image.Image | None = None):
        self.case = case
        self.edit = edit
        self.original = original if original is not None else edit  # the edit as the method wrote it
        self._images = images
        self._scorer = scorer
        self._store = store

    def image(self, role: str) -> Image.Image:
        return self.edit if role == "edit" else self._images.get(role)

    def mask(self, role: str) -> np.ndarray:
        return self._images.mask(role)

    @property
    def siblings(self) -> tuple[Case, ...]:
        """The other cases of this case's group (same ``group``), in benchmark order."""
        return self._images.siblings

    def sibling_image(self, case: Case, role: str) -> Image.Image:
        return self._images.of(case, role)

    def edit_resized(self, resample: int) -> Image.Image:
        """The edit at the source's size with a given resampling filter (protocols that prescribe one)."""
        size = self._images.get("source").size
        return self.edit if self.original.size == size else self.original.resize(size, resample)

    def dino(self, role: str | Image.Image, resolution: int | None = None):
        """DINOv3 features of a role's image (or of an image) at ``resolution`` (default: the scoring one)."""
        if self._store is None:
            raise ConfigError("this metric needs DINOv3 features but no backbone was loaded")
        image = self.image(role) if isinstance(role, str) else role
        return self._store.get(image, resolution)

    def match_grid(self, role: str | Image.Image):
        """The patch grid used for point matching: DINOv3 at the matching resolution."""
        return self.dino(role, self._scorer.match_resolution).patches

    def dift_grid(self, role: str | Image.Image):
        """DIFT features (SD 2.1) as a ``(rows, cols, C)`` grid, conditioned on the case's caption."""
        if self._scorer.dift is None:
            raise ConfigError("this metric needs DIFT features but no Stable Diffusion model was loaded")
        image = self.image(role) if isinstance(role, str) else role
        return self._scorer.dift_features(image, self.case.caption or "")

    @property
    def lpips(self) -> "LpipsModel":
        if self._scorer.lpips is None:
            raise ConfigError("this metric needs LPIPS but no LPIPS network was loaded")
        return self._scorer.lpips


def in_memory_case(source: Image.Image, target: Image.Image | None, case_id: str = "image", **fields) -> Case:
    """A case whose images are held in memory (PNG bytes): scoring an edit without a benchmark on disk."""

    def ref(image: Image.Image, role: str) -> ImageRef:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG")
        return ImageRef(label=f"<in-memory {role}>", data=buffer.getvalue())

    return Case(id=case_id, source=ref(source, "source"), target=ref(target, "target") if target is not None else None,
                **fields)
