"""The import graph of scoring, metrics, judge and analysis: no cycle, and the dependencies point one way.

Every import statement counts, wherever it is (module top, inside a function, under ``TYPE_CHECKING``), as
in import-linter/grimp: a lazy import is still a dependency. ``from pkg import name`` is an edge to
``pkg.name`` when that is a module, else to ``pkg`` itself.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import tvbench

ROOT = Path(tvbench.__file__).resolve().parent
PACKAGES = ("tvbench.scoring", "tvbench.metrics", "tvbench.judge", "tvbench.analysis")
# The parts of scoring that metrics and the judge may use; they import neither metrics nor judge.
PARTS = {f"tvbench.scoring.{name}" for name in ("files", "rows", "edits", "runs", "context")}


def module_files() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        folder = ROOT / package.split(".", 1)[1]
        for path in folder.rglob("*.py"):
            parts = path.relative_to(ROOT.parent).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            for target in targets:
                while target and target not in modules:  # `import a.b.c` names a.b.c; keep the known prefix
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_known_edges():
    graph = import_graph()
    assert "tvbench.scoring.rows" in graph["tvbench.judge.phase"]
    assert "tvbench.scoring.context" in graph["tvbench.metrics.base"]  # a TYPE_CHECKING import counts
    assert "tvbench.judge.phase" in graph["tvbench.scoring.scorer"]  # a lazy import counts
    assert "tvbench.metrics" in graph["tvbench.scoring.scorer"]


def test_no_import_cycle_between_scoring_metrics_and_judge():
    assert cycles(import_graph()) == []


def test_a_cycle_is_detected():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_parts_import_neither_metrics_nor_judge_nor_the_orchestrator():
    graph = import_graph()
    for part in PARTS:
        assert graph[part] <= PARTS, f"{part} imports {sorted(graph[part] - PARTS)}"


def test_metrics_judge_and_analysis_use_only_the_parts_of_scoring():
    graph = import_graph()
    for module, targets in graph.items():
        if module.startswith(("tvbench.metrics", "tvbench.judge", "tvbench.analysis")):
            upward = {t for t in targets if t.startswith("tvbench.scoring") and t not in PARTS}
            assert not upward, f"{module} imports {sorted(upward)}"


def test_importing_metrics_and_judge_does_not_import_the_orchestrator():
    code = ("import sys, tvbench.metrics, tvbench.metrics.dino, tvbench.metrics.matching, tvbench.judge.phase; "
            "print(sorted(m for m in sys.modules if m.startswith('tvbench.scoring')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "tvbench.scoring.rows" in loaded
    for upper in ("scorer", "orchestrator", "aggregation", "config"):
        assert f"tvbench.scoring.{upper}'" not in loaded, loaded
