"""Analysis of scored results: uncertainty, paired comparisons, sub-task numbers, plots, DataFrames."""
