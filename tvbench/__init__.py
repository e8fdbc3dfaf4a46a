"""tvbench: benchmark and evaluation harness for text-vision co-instructed image editing.

``tvbench.load_scores(RESULTS)`` and ``tvbench.load_summary(RESULTS)`` give a scored results folder as pandas
DataFrames (see :mod:`tvbench.analysis.frames`); they are imported on first use, so ``import tvbench`` stays light.
"""

__version__ = "0.1.0"

_LAZY = {"load_scores": "tvbench.analysis.frames", "load_summary": "tvbench.analysis.frames"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tvbench' has no attribute {name!r}")


__all__ = ["__version__", "load_scores", "load_summary"]
