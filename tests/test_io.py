"""Crash-safe writes keep the file modes a user expects (the umask decides, as for any file they write)."""

from __future__ import annotations

import os
import stat

import pytest

from tvbench.io import atomic_write_bytes, build_folder_once


@pytest.fixture
def umask():
    """Set a umask for one test, then put the old one back."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
@pytest.mark.parametrize("mask, file_mode, folder_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700),
                                                           (0o002, 0o664, 0o775)])
def test_atomic_files_and_built_folders_follow_the_umask(tmp_path, umask, mask, file_mode, folder_mode):
    umask(mask)
    atomic_write_bytes(tmp_path / "scores.jsonl", b"{}\n")
    atomic_write_bytes(tmp_path / "scores.jsonl", b"{}\n{}\n")  # replacing keeps the umask's mode too
    built = build_folder_once(tmp_path / "cache", lambda work: (work / "done").write_text("ok"), "done")
    assert stat.S_IMODE((tmp_path / "scores.jsonl").stat().st_mode) == file_mode
    assert stat.S_IMODE(built.stat().st_mode) == folder_mode
    assert (tmp_path / "scores.jsonl").read_bytes() == b"{}\n{}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "scores.jsonl"]  # no partial files left
