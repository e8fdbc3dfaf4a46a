"""The files scoring writes into a results folder (readers such as reports and loaders import only this)."""

SCORES_FILE = "scores.jsonl"  # one row per (case, method, metric)
SUMMARY_FILE = "summary.json"  # per method and metric statistics, and what scored them
CACHE_FILE = "scores.cache.jsonl"  # append-only memo of computed rows
SCORES_SCHEMA_VERSION = 1
