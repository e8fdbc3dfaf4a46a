"""LPIPS (Zhang et al., 2018) through the ``lpips`` package, AlexNet by default as in the paper.

The package ships the learned linear heads; the AlexNet trunk comes from torchvision's ImageNet weights,
which torch downloads once into ``$TORCH_HOME/hub/checkpoints``. Inputs are scaled to [-1, 1] here, the range
LPIPS was trained on (feeding [0, 1] images is the classic silent LPIPS mistake).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from contextlib import contextmanager

import numpy as np
import torch
from PIL import Image

from tvbench.errors import UnavailableError
from tvbench.features.random_init import deterministic_init_

LPIPS_NETS = ("alex", "vgg", "squeeze")
RANDOM_TRUNK_SEED = 0
RECENT_IMAGES = 6  # trunk activations kept (about 2.5 MB for a 256 x 256 image, 10 MB at 512 x 512)


def to_lpips_tensor(image: Image.Image) -> torch.Tensor:
    """(1, 3, H, W) float tensor in [-1, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0)


_INIT_FUNCTIONS = ("uniform_", "normal_", "trunc_normal_", "constant_", "zeros_", "ones_", "kaiming_uniform_",
                   "kaiming_normal_", "xavier_uniform_", "xavier_normal_", "orthogonal_")


@contextmanager
def _no_random_init():
    """``torch.nn.init``'s fills as no-ops while LPIPS is built.

    Every weight LPIPS keeps is overwritten right after it is made: the trunk from torchvision's checkpoint (or
    :func:`deterministic_init_`), the linear heads from the ``lpips`` wheel. Drawing the random values first
    cost more than anything else in building it: torchvision's AlexNet constructor fills its 58M classifier
    weights, which LPIPS then drops (about 0.45 of 0.65 CPU-s, measured 2026-11-27). The same trick as
    transformers' ``no_init_weights``; :class:`LpipsModel` checks afterwards that every weight is finite.
    """
    saved = {name: getattr(torch.nn.init, name) for name in _INIT_FUNCTIONS if hasattr(torch.nn.init, name)}
    try:
        for name in saved:
            setattr(torch.nn.init, name, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        for name, function in saved.items():
            setattr(torch.nn.init, name, function)


class LpipsModel:
    def __init__(self, net: str = "alex", *, random_trunk: bool = False, device: torch.device | str = "cpu"):
        if net not in LPIPS_NETS:
            raise UnavailableError(f"unknown LPIPS net {net!r}; choose one of {', '.join(LPIPS_NETS)}")
        import lpips

        self.net = net
        self.random_trunk = random_trunk
        self.device = torch.device(device)
        try:
            with warnings.catch_warnings(), _no_random_init():
                warnings.simplefilter("ignore")
                model = lpips.LPIPS(net=net, version="0.1", pretrained=True, pnet_rand=random_trunk, verbose=False)
        except Exception as exc:  # torchvision's download raises URLError, RuntimeError or OSError
            raise UnavailableError(
                f"LPIPS-{net} needs torchvision's ImageNet {net} weights, which are not in the torch cache "
                f"($TORCH_HOME/hub/checkpoints) and could not be downloaded ({type(exc).__name__}); run once "
                "with network access, or score with --smoke for an offline pipeline check") from None
        if random_trunk:
            deterministic_init_(model.net, RANDOM_TRUNK_SEED)
        if not all(torch.isfinite(p).all() for p in model.parameters()):  # a weight left uninitialised would show
            raise RuntimeError(f"LPIPS-{net}: a weight was not loaded (non-finite values)")
        self.model = model.eval().to(self.device)
        self._normalize, self._average = lpips.normalize_tensor, lpips.lpips.spatial_average
        self._recent: OrderedDict[tuple[int, tuple[int, int] | None], tuple[Image.Image, list[torch.Tensor]]] = \
            OrderedDict()

    def describe(self) -> dict:
        trunk = f"random (seed {RANDOM_TRUNK_SEED})" if self.random_trunk else "torchvision ImageNet"
        return {"net": self.net, "version": "0.1", "trunk": trunk, "input_range": "[-1, 1]"}

    @torch.inference_mode()
    def distance(self, a: Image.Image, b: Image.Image) -> float:
        if a.size != b.size:
            raise ValueError(f"LPIPS needs equal sizes, got {a.size} and {b.size}")
        return self._compare(self._features(a), self._features(b))

    @torch.inference_mode()
    def distance_at(self, a: Image.Image, b: Image.Image, size: tuple[int, int]) -> float:
        """LPIPS after resizing both [-1, 1] tensors to ``size`` (W, H) with bilinear interpolation, no antialias
        (``F.interpolate``'s default, as DragDiffusion's similarity script uses)."""
        return self._compare(self._features(a, size), self._features(b, size))

    def _features(self, image: Image.Image, size: tuple[int, int] | None = None) -> list[torch.Tensor]:
        """The trunk's unit-normalised activations per layer, as ``lpips.LPIPS.forward`` computes them for one
        input, kept for the last few images: every method's edit of a case is compared with the same target (or
        source) object, whose activations are computed once."""
        key = (id(image), size)
        held = self._recent.get(key)
        if held is not None and held[0] is image:
            self._recent.move_to_end(key)
            return held[1]
        tensor = to_lpips_tensor(image)
        if size is not None:
            width, height = size
            tensor = torch.nn.functional.interpolate(tensor, (height, width), mode="bilinear")
        outputs = self.model.net.forward(self.model.scaling_layer(tensor.to(self.device)))
        features = [self._normalize(outputs[k]) for k in range(self.model.L)]
        self._recent[key] = (image, features)  # the image is kept so that its id is not reused while held
        while len(self._recent) > RECENT_IMAGES:
            self._recent.popitem(last=False)
        return features

    def _compare(self, first: list[torch.Tensor], second: list[torch.Tensor]) -> float:
        """The rest of ``lpips.LPIPS.forward`` (version 0.1, not spatial): per layer, the learned linear head on the
        squared difference, averaged over space, summed over layers in the same order."""
        total = 0
        for k in range(self.model.L):
            total += self._average(self.model.lins[k]((first[k] - second[k]) ** 2), keepdim=True)
        return float(total.flatten()[0])
