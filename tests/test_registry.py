"""The registry: lazy imports, entry-point plugins, did-you-mean, and a listing that broken methods cannot break."""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint

import pytest
from typer.testing import CliRunner

from tvbench.cli import app
from tvbench.errors import UnavailableError, UnknownNameError
from tvbench.methods import METHODS, create_method, list_methods
from tvbench.registry import Registry


@pytest.fixture
def broken_methods(tmp_path, monkeypatch):
    """A method whose dependency is missing and one whose module crashes on import."""
    (tmp_path / "crashing_plugin.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    METHODS.register("needs-missing-dep", "tvbench_adapters.no_such_family:Editor", extra="diffusers")
    METHODS.register("crashes-on-import", "crashing_plugin:Editor")
    yield
    METHODS.unregister("needs-missing-dep")
    METHODS.unregister("crashes-on-import")
    sys.modules.pop("crashing_plugin", None)


def test_unknown_names_suggest_close_ones():
    with pytest.raises(UnknownNameError, match="did you mean 'identity'"):
        create_method("identty")


def test_unavailable_methods_are_listed_with_the_fix(broken_methods):
    rows = {row.name: row for row in list_methods()}
    assert rows["identity"].available and rows["tps-warp"].inputs == "M+T"
    missing = rows["needs-missing-dep"]
    assert not missing.available and 'pip install "tvbench[diffusers]"' in missing.reason
    crashing = rows["crashes-on-import"]
    assert not crashing.available and "boom at import" in crashing.reason
    with pytest.raises(UnavailableError, match=r"tvbench\[diffusers\]"):
        create_method("needs-missing-dep")


def test_ls_survives_broken_methods(broken_methods):
    result = CliRunner().invoke(app, ["ls"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "needs-missing-dep" in result.output and "crashes-on-import" in result.output
    assert "tps-warp" in result.output and "ds_global_tgt" in result.output and "DS_global^tgt ↑" in result.output


def test_entry_point_plugins_are_found(monkeypatch):
    registry = Registry("method", entry_point_group="tvbench.methods")
    registry.register("identity", "tvbench_adapters.reference:Identity")
    points = [EntryPoint("my-identity", "tvbench_adapters.reference:Identity", "tvbench.methods"),
              EntryPoint("identity", "somewhere:Else", "tvbench.methods")]
    monkeypatch.setattr("tvbench.registry.entry_points", lambda group: points if group == "tvbench.methods" else [])
    assert registry.names() == ["identity", "my-identity"]
    assert registry.load("my-identity").name == "identity"
    assert registry.entry("identity").target == "tvbench_adapters.reference:Identity"  # built-ins win


def test_loading_is_lazy():
    registry = Registry("thing")
    registry.register("lazy", "module_that_does_not_exist_yet:Thing")
    assert registry.names() == ["lazy"]  # registering imported nothing
    assert not registry.availability("lazy").available


def test_required_packages_are_checked_without_importing_them():
    registry = Registry("method")
    registry.register("needs-nothing-heavy", "tvbench_adapters.reference:Identity", requires=("json",))
    registry.register("needs-absent", "tvbench_adapters.reference:Identity", extra="diffusers",
                      requires=("json", "package_that_is_not_installed"))
    assert registry.availability("needs-nothing-heavy").available
    status = registry.availability("needs-absent")
    assert not status.available and "package_that_is_not_installed" in status.reason
    assert 'pip install "tvbench[diffusers]"' in status.reason
    with pytest.raises(UnavailableError, match="package_that_is_not_installed"):
        registry.load("needs-absent")
