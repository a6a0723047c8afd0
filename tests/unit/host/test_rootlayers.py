"""A root layer's owners are stored as seen inside: the source's uid range subtracted, modes kept."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from e2bq.sandboxd.jail import idmap, rootlayers

BASE = idmap.base_of(3)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    root = tmp_path / "upper"
    (root / "etc" / "deep").mkdir(parents=True)
    (root / "etc" / "marker").write_text("x")
    (root / "usr-bin-rootsh").write_text("#!/bin/sh\n")
    (root / "link").symlink_to("etc/marker")
    (root / "host-owned").write_text("")
    for path in (root, root / "etc", root / "etc" / "deep", root / "etc" / "marker", root / "usr-bin-rootsh"):
        os.lchown(path, BASE, BASE)
    os.lchown(root / "link", BASE + 1000, BASE + 1000)
    os.chmod(root / "usr-bin-rootsh", 0o4755)  # after its chown: setuid root inside
    os.lchown(root / "host-owned", 0, 0)
    os.mknod(root / "etc" / "gone", stat.S_IFCHR | 0o000, os.makedev(0, 0))  # a whiteout
    os.lchown(root / "etc" / "gone", BASE, BASE)
    return root


def test_owners_are_shifted_once_and_modes_kept(tree: Path) -> None:
    rootlayers.canonicalize(tree, BASE)

    def owner(path: Path) -> tuple[int, int]:
        found = os.lstat(path)
        return found.st_uid, found.st_gid

    for path in (tree, tree / "etc", tree / "etc" / "deep", tree / "etc" / "marker", tree / "etc" / "gone"):
        assert owner(path) == (0, 0), path
    assert owner(tree / "link") == (1000, 1000)
    assert os.lstat(tree / "usr-bin-rootsh").st_mode & 0o7777 == 0o4755
    assert stat.S_ISCHR(os.lstat(tree / "etc" / "gone").st_mode)
    # an id outside the range was the overflow id inside: it stays that, never root
    assert owner(tree / "host-owned") == (rootlayers.OVERFLOW_ID, rootlayers.OVERFLOW_ID)


def test_parts_are_counted_without_gaps(tmp_path: Path) -> None:
    for part in ("0", "1", "3"):
        (tmp_path / part).mkdir()
    assert rootlayers.count(tmp_path) == 2
    assert rootlayers.count(tmp_path / "missing") == 0
