"""Working sizes of the editing pipelines, and a thread-safe way to choose them where diffusers hard-codes them.

Every editor here resizes the source to a *working size* of about one megapixel, with the source's aspect
ratio, and its output has that size, not the source's (80x64 in gives 64x64 out at a tiny area). The
adapters map the output back to the source size and record the native size.

How each pipeline picks its working size (diffusers 0.37-0.42):

- FLUX.1 Kontext takes ``max_area`` and, with ``_auto_resize=False``, uses the condition image at its own
  size: the adapter resizes the source to the working size itself and passes ``max_area``. Nothing global.
- QwenImageEdit, QwenImageEditPlus and LongCatImageEdit call their module's ``calculate_dimensions`` with a
  literal ``1024 * 1024`` (Plus: also ``VAE_IMAGE_SIZE``, and ``CONDITION_IMAGE_SIZE`` = 384^2 for the
  vision-language encoder's copy) and resize whatever they are given to that size, so pre-resizing the
  input cannot change it, and ``height``/``width`` only change the output latent, not the condition.

For those three, :func:`working_area` wraps the module's ``calculate_dimensions`` once with a function that
substitutes the requested area for the 1024^2 area, but only inside a ``with working_area(...)`` block of
the *current* thread or task (a :class:`contextvars.ContextVar`). Everywhere else, including other threads
calling the same pipeline class concurrently, the wrapper calls the original with the original arguments.
The vision-language condition of the Plus pipeline (384^2) keeps its size: it is what the model was trained
with. The default area (1024^2) never installs the wrapper at all.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from types import ModuleType
from typing import Iterator

NATIVE_AREA = 1024 * 1024  # the area all four pipelines default to
_AREA: contextvars.ContextVar[int | None] = contextvars.ContextVar("tvbench_working_area", default=None)
_WRAPPED = "_tvbench_working_area"


def _wrap(module: ModuleType) -> None:
    original = module.calculate_dimensions
    if getattr(original, _WRAPPED, False):
        return

    def calculate_dimensions(target_area, ratio):
        area = _AREA.get()
        return original(area if area is not None and target_area == NATIVE_AREA else target_area, ratio)

    setattr(calculate_dimensions, _WRAPPED, True)
    calculate_dimensions.__wrapped__ = original  # type: ignore[attr-defined]
    calculate_dimensions.__doc__ = original.__doc__
    module.calculate_dimensions = calculate_dimensions


@contextlib.contextmanager
def working_area(area: int, module: ModuleType) -> Iterator[None]:
    """Within this block (this thread or task only), ``module``'s 1024^2 working area becomes ``area``."""
    if area == NATIVE_AREA:
        yield
        return
    _wrap(module)
    token = _AREA.set(area)
    try:
        yield
    finally:
        _AREA.reset(token)


def area_dimensions(module: ModuleType, area: int, width: int, height: int) -> tuple[int, int]:
    """The working ``(width, height)`` ``module``'s pipeline computes for a ``width x height`` source."""
    with working_area(area, module):
        result = module.calculate_dimensions(NATIVE_AREA, width / height)
    return int(result[0]), int(result[1])


def kontext_dimensions(area: int, width: int, height: int, multiple: int = 16) -> tuple[int, int]:
    """FluxKontextPipeline's output size for ``max_area=area`` and a ``width x height`` request."""
    aspect = width / height
    return (round(math.sqrt(area * aspect)) // multiple * multiple,
            round(math.sqrt(area / aspect)) // multiple * multiple)


def check_area(area: int, method: str) -> None:
    from tvbench.errors import ConfigError

    if area < 32 * 32:
        raise ConfigError(f"method {method!r}: working_area={area} is below 1024 pixels (32x32); "
                          f"the pipelines' native area is {NATIVE_AREA} (1024x1024)")
