"""A new sandbox's home starts as its template's: what is copied, and how (``rootfs.seed_home``)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from e2bq.sandboxd.jail import rootfs

OWNER = 54321


def _template(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    home = root / "home" / "user"
    (home / "app" / "data").mkdir(parents=True)
    (home / ".bashrc").write_text("# skeleton\n")
    (home / "app" / "data" / "rows.csv").write_text("a,b\n")
    (home / "app").chmod(0o750)
    os.symlink("/etc/passwd", home / "passwd-link")  # never followed: copied as a link
    os.mkfifo(home / "pipe")
    (home / "tool").write_text("#!/bin/sh\n")
    (home / "tool").chmod(0o4755)
    return root


def test_the_templates_home_is_copied_as_the_sandboxes_users(tmp_path: Path) -> None:
    template = _template(tmp_path)
    home = tmp_path / "home"
    home.mkdir()

    rootfs.seed_home(template, home, OWNER)

    assert (home / ".bashrc").read_text() == "# skeleton\n"
    assert (home / "app" / "data" / "rows.csv").read_text() == "a,b\n"
    assert stat.S_IMODE((home / "app").stat().st_mode) == 0o750
    assert os.readlink(home / "passwd-link") == "/etc/passwd"
    assert not (home / "pipe").exists()  # a fifo has no place in a home
    assert stat.S_IMODE((home / "tool").stat().st_mode) == 0o755  # no setuid bit survives
    owners = {os.lstat(path).st_uid for path in [*home.rglob("*"), home / "passwd-link"]}
    assert owners == {OWNER}


def test_a_template_without_the_users_home_or_with_a_link_there_seeds_nothing(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    (bare / "home").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "secret").mkdir(parents=True)
    (bare / "home" / "user").symlink_to(elsewhere)
    home = tmp_path / "home"
    home.mkdir()

    rootfs.seed_home(bare, home, OWNER)
    rootfs.seed_home(tmp_path / "no-such-template", home, OWNER)

    assert list(home.iterdir()) == []
