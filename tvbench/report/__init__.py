"""Leaderboards from scoring summaries, in Markdown, LaTeX, CSV, JSON and HTML."""

from tvbench.report.leaderboard import Leaderboard, build_leaderboard, load_summary
from tvbench.report.render import RENDERERS, render

__all__ = ["RENDERERS", "Leaderboard", "build_leaderboard", "load_summary", "render"]
