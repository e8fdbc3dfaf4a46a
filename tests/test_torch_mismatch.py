"""Issue 19 item 7: a torchvision built for another torch (``operator torchvision::nms does not exist``) is the
install's to fix: one line naming both versions and the pair to install, exit 2, never "internal error" (exit 3,
which stays for bugs)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import version

import pytest

from tvbench.errors import UnavailableError, torch_pair_mismatch
from tvbench.methods import Method, setup_method

NMS = "operator torchvision::nms does not exist"
# The CLI's own entry point, with `ls` made to import a torchvision that fails as a mismatched one does.
SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
import tvbench.methods
def listing():
    import torchvision  # the fake one beside this script
tvbench.methods.list_methods = listing
from tvbench.cli import main
main(["ls", "methods"])
"""
FAKE_TORCHVISION = {
    "direct": f"raise RuntimeError({NMS!r})\n",
    # as transformers / diffusers re-raise it: the cause behind a message of their own
    "wrapped": ("try:\n"
                f"    raise RuntimeError({NMS!r})\n"
                "except RuntimeError as exc:\n"
                "    raise RuntimeError('Failed to import diffusers.models because of the following error (look up to "
                "see its traceback):') from exc\n"),
    "bug": "raise RuntimeError('something else entirely')\n",
}


@pytest.mark.parametrize("kind", sorted(FAKE_TORCHVISION))
def test_a_mismatched_torchvision_is_one_line_with_both_versions_and_exit_2(kind, tmp_path):
    package = tmp_path / "torchvision"
    package.mkdir()
    (package / "__init__.py").write_text(FAKE_TORCHVISION[kind])
    environment = {k: v for k, v in os.environ.items() if k != "TVBENCH_DEBUG"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True,
                          env=environment, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    if kind == "bug":
        assert done.returncode == 3
        assert lines[0].startswith("internal error (a bug in tvbench): RuntimeError: something else entirely")
        assert "TVBENCH_DEBUG=1" in lines[0] and "tvbench --version" in lines[0]
        return
    assert done.returncode == 2, done.stderr
    torch, vision = version("torch"), version("torchvision")
    assert lines[0].startswith(f"error: torch {torch} and torchvision {vision} do not match"), lines[0]
    assert "pip install" in lines[0] and "internal error" not in lines[0]


def test_the_fix_names_the_torchvision_made_for_the_installed_torch(monkeypatch):
    versions = {"torch": "2.9.1+cpu", "torchvision": "0.20.1"}
    monkeypatch.setattr("importlib.metadata.version", lambda name: versions[name])
    message = torch_pair_mismatch(RuntimeError(NMS))
    assert message.startswith("torch 2.9.1+cpu and torchvision 0.20.1 do not match")
    assert 'pip install "torchvision==0.24.*" --index-url https://download.pytorch.org/whl/cpu' in message
    assert torch_pair_mismatch(RuntimeError("operator aten::foo does not exist")) is None
    assert torch_pair_mismatch(ValueError("unrelated")) is None


@dataclass
class NeedsTorchvision(Method):
    name = "needs-torchvision"

    def setup(self) -> None:
        raise RuntimeError(NMS)

    def edit(self, case, *, seed):
        raise AssertionError("never reached")


def test_a_method_whose_setup_meets_the_mismatch_names_the_versions():
    with pytest.raises(UnavailableError) as info:
        setup_method(NeedsTorchvision())
    message = str(info.value)
    assert message.startswith("method 'needs-torchvision': setup on cpu failed: torch ")
    assert f"torchvision {version('torchvision')} do not match" in message and "\n" not in message
