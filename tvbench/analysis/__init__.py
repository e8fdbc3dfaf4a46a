"""Analysis of scored results: DataFrames, bootstrap confidence intervals, paired comparisons, the sub-task
statistics and plots. Pure numpy and pandas (matplotlib only for the plots).

- :mod:`~tvbench.analysis.frames`: ``load_scores``, ``load_summary`` (also ``tvbench.load_scores``, ...)
- :mod:`~tvbench.analysis.bootstrap`: percentile and BCa intervals over cases, groups or repeats
- :mod:`~tvbench.analysis.paired`: paired bootstrap, Wilcoxon signed-rank, Holm; ``compare_methods``
- :mod:`~tvbench.analysis.uncertainty`: intervals and leader ties written into a summary
- :mod:`~tvbench.analysis.subtasks`: Spearman and full-order statistics of the magnitude groups
- :mod:`~tvbench.analysis.compare`: what ``tvbench compare`` prints
- :mod:`~tvbench.analysis.plots`: ``tvbench report --plots``
"""

from tvbench.lazy import lazy_exports

# The functions the README's pandas section names, importable from here (each module loads on first use).
_EXPORTS = {"load_scores": "frames", "load_summary": "frames", "read_summary": "frames", "compare_methods": "paired",
            "holm": "paired", "wilcoxon_p": "paired", "confidence_interval": "bootstrap",
            "paired_difference": "bootstrap", "Units": "bootstrap", "units_for": "units", "compare_results": "compare"}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
