"""The templates folder: what a killed build left is swept, and nothing mounted is ever deleted."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from e2bq.sandboxd.errors import TemplateError
from e2bq.sandboxd.templates.store import TemplateStore, remove_tree


def test_staging_left_by_a_dead_build_is_swept_a_live_ones_kept(tmp_path: Path) -> None:
    store = TemplateStore(tmp_path)
    dead = store.staging / "abc-999999999-x1"  # no such pid
    live = store.staging / f"abc-{os.getpid()}-x2"
    for folder in (dead, live):
        (folder / "rootfs" / "etc").mkdir(parents=True)

    store.sweep_staging()

    assert not dead.exists()
    assert live.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_folder_with_a_mount_below_it_is_not_removed(tmp_path: Path) -> None:
    mounted = tmp_path / "rootfs" / "dev"
    mounted.mkdir(parents=True)
    (mounted / "null-stand-in").write_text("kept")
    subprocess.run(["mount", "-t", "tmpfs", "none", str(mounted)], check=True)
    try:
        (mounted / "device").write_text("must survive")
        with pytest.raises(TemplateError, match="mounted in it: unmount it"):
            remove_tree(tmp_path / "rootfs")
        assert (mounted / "device").read_text() == "must survive"
    finally:
        subprocess.run(["umount", str(mounted)], check=True)
    remove_tree(tmp_path / "rootfs")
    assert not (tmp_path / "rootfs").exists()
