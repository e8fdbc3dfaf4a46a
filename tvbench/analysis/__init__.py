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
