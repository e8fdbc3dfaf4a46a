"""A non-editable install ships every package: pyproject's explicit list matches the folders on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")
REPO = Path(__file__).resolve().parent.parent


def test_every_python_package_is_listed_in_pyproject():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    roots = config["package-dir"]  # import name -> folder
    found = set()
    for name, folder in roots.items():
        base = REPO / folder
        for init in base.rglob("__init__.py"):
            parts = init.parent.relative_to(base).parts
            found.add(".".join((name, *parts)))
    assert sorted(found) == sorted(config["packages"])
