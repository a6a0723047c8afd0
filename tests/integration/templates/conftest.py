"""The tiny template, built once per session from Debian's archive and PyPI (about a minute here).

Deselect with ``-m "not network"`` where Debian's archive is out of reach; CI (``CI=true``) fails
instead of skipping, so template builds cannot pass unseen.
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from e2bq.sandboxd.templates.cli import template
from tests.procs import SandboxHostProcess, sandbox_host

TINY = """\
base = "bookworm"
apt = ["jq"]
pip = ["six"]
commands = [
    "jq --version > /etc/built-by-command",
    "python3 -c 'import six' && echo ok >> /etc/built-by-command",
    # What a hostile command would try: the host's root through pid 1, a mount, a disk's device node.
    "ls /proc/1/root/work >/dev/null 2>&1 && echo host-root >> /etc/probes || echo own-root >> /etc/probes",
    "mount -t tmpfs none /mnt 2>/dev/null && echo mounted >> /etc/probes || echo no-mount >> /etc/probes",
    "mknod /tmp/disk b 8 0 2>/dev/null && echo mknod >> /etc/probes || echo no-mknod >> /etc/probes",
    "cat /proc/1/comm >> /etc/probes; hostname >> /etc/probes",
    # what a build leaves in the user's home: each sandbox's home starts with it
    "echo from the template > /home/user/notes.txt && chown user: /home/user/notes.txt",
]
user = "user"

[env]
GREETING = "hello"

[[files]]
src = "data/motd.txt"
dest = "/opt/tiny/motd.txt"
mode = "0640"
"""


def _archive_reachable() -> bool:
    try:
        with urllib.request.urlopen("http://deb.debian.org/debian/dists/bookworm/Release", timeout=10):
            return True
    except OSError:
        return False


def build_tiny(store: Path, source: Path, name: str = "tiny") -> None:
    """Build (or find cached) the tiny template under ``name``."""
    result = CliRunner().invoke(
        template, ["build", name, "--from", str(source), "--dir", str(store)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output


def require_build_host() -> None:
    """Skip unless this host can build templates; under CI=true an unreachable archive fails."""
    if os.geteuid() != 0 or not shutil.which("mmdebstrap"):
        pytest.skip("building a template needs root and mmdebstrap (make system)")
    if not _archive_reachable():
        if os.environ.get("CI"):
            pytest.fail("Debian's archive is unreachable from CI: template builds were not tested")
        pytest.skip("Debian's archive (deb.debian.org) is unreachable from this host")


@pytest.fixture(scope="session")
def tiny_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the templates folder, the template file) with the tiny template built once."""
    require_build_host()
    store = tmp_path_factory.mktemp("templates")
    source = tmp_path_factory.mktemp("source")
    (source / "data").mkdir()
    (source / "data" / "motd.txt").write_text("built from a template file\n")
    (source / "tiny.toml").write_text(TINY)
    build_tiny(store, source / "tiny.toml")
    return store, source / "tiny.toml"


@pytest.fixture(scope="module")
def store(tiny_template: tuple[Path, Path]) -> Path:
    """The templates folder, with the tiny template in it (built again if a test deleted it)."""
    folder, source = tiny_template
    build_tiny(folder, source)
    return folder


@pytest.fixture(scope="module")
def host(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHostProcess]:
    """A sandboxd serving the templates in ``store`` (one per test module)."""
    with sandbox_host(
        tmp_path_factory.mktemp("templated-host"), env={"E2BQ_SANDBOXD_TEMPLATES_DIR": str(store)}
    ) as running:
        yield running
