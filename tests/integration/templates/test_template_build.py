"""Building a template for real: Debian's archive, PyPI, a file and a command, then the cache.

The build is the smallest that still touches every step (minbase, one apt package, one pip package,
one file, one command): about a minute here. Deselect with ``-m "not network"`` where Debian's
archive is out of reach; CI (``CI=true``) fails instead of skipping, so it cannot pass unseen.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from e2bq.sandboxd.templates.cli import template

pytestmark = [pytest.mark.slow, pytest.mark.network, pytest.mark.timeout(600)]

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


@pytest.fixture(scope="module", autouse=True)
def can_build() -> None:
    if os.geteuid() != 0 or not shutil.which("mmdebstrap"):
        pytest.skip("building a template needs root and mmdebstrap (make system)")
    if not _archive_reachable():
        if os.environ.get("CI"):
            pytest.fail("Debian's archive is unreachable from CI: template builds were not tested")
        pytest.skip("Debian's archive (deb.debian.org) is unreachable from this host")


def run(*args: str) -> Result:
    return CliRunner().invoke(template, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the templates folder, the template file) with the tiny template built once."""
    store = tmp_path_factory.mktemp("templates")
    source = tmp_path_factory.mktemp("source")
    (source / "data").mkdir()
    (source / "data" / "motd.txt").write_text("built from a template file\n")
    (source / "tiny.toml").write_text(TINY)
    result = run("build", "tiny", "--from", str(source / "tiny.toml"), "--dir", str(store))
    assert result.exit_code == 0, result.output
    return store, source / "tiny.toml"


def test_the_build_holds_the_packages_files_and_commands(folders: tuple[Path, Path]) -> None:
    store, _ = folders
    record = json.loads((store / "tiny" / "template.json").read_text())
    rootfs = Path(record["rootfs"])
    assert (store / "tiny" / "rootfs").resolve() == rootfs.resolve()
    assert rootfs == store / "builds" / record["hash"] / "rootfs"
    assert (rootfs / "usr/bin/jq").is_file()
    assert list((rootfs / "usr/local/lib").glob("python3*/dist-packages/six.py"))
    motd = rootfs / "opt/tiny/motd.txt"
    assert motd.read_text() == "built from a template file\n"
    assert motd.stat().st_mode & 0o777 == 0o640
    assert (rootfs / "etc/built-by-command").read_text().splitlines() == ["jq-1.6", "ok"]
    assert (rootfs / "etc/probes").read_text().splitlines() == [
        "own-root",
        "no-mount",
        "no-mknod",
        "bwrap",
        "sandbox",
    ]
    assert "user:x:1000:1000::/home/user:/bin/bash" in (rootfs / "etc/passwd").read_text()
    assert (rootfs / "home/user").stat().st_uid == 1000
    # Nothing of the build host's identity or package caches stays in the template.
    assert (rootfs / "etc/hostname").read_text() == "sandbox\n"
    assert (rootfs / "etc/resolv.conf").read_text() == ""
    assert not (rootfs / "run/e2bq-ca.crt").exists()
    assert not list((rootfs / "usr/share/man").glob("*/*"))
    assert record["env"] == {"GREETING": "hello"}
    assert record["user"] == "user" and record["workdir"] == "/home/user"
    assert record["size_bytes"] > 50 * 2**20
    assert record["definition"]["pip"] == ["six"]
    assert list((store / ".staging").iterdir()) == []


def test_an_unchanged_definition_is_not_built_again(folders: tuple[Path, Path]) -> None:
    store, source = folders
    first = json.loads((store / "tiny" / "template.json").read_text())

    result = run("build", "tiny-again", "--from", str(source), "--dir", str(store))

    assert result.exit_code == 0, result.output
    assert "unchanged, cached build" in result.output
    again = json.loads((store / "tiny-again" / "template.json").read_text())
    assert again["hash"] == first["hash"] and again["created"] == first["created"]
    assert len(list((store / "builds").iterdir())) == 1


def test_list_and_delete(folders: tuple[Path, Path]) -> None:
    store, source = folders
    run("build", "tiny-copy", "--from", str(source), "--dir", str(store))
    listed = json.loads(run("list", "--json", "--dir", str(store)).output)
    assert {"tiny", "tiny-copy"} <= {record["name"] for record in listed}
    assert "tiny-copy" in run("list", "--dir", str(store)).output

    shared = run("delete", "tiny-copy", "--dir", str(store))
    assert shared.exit_code == 0 and "still used by another name" in shared.output
    assert (store / "tiny" / "rootfs" / "usr/bin/jq").is_file()

    missing = CliRunner().invoke(template, ["delete", "tiny-copy", "--dir", str(store)])
    assert missing.exit_code == 1 and "no template named 'tiny-copy'" in missing.output


def test_deleting_the_last_name_removes_the_build(folders: tuple[Path, Path]) -> None:
    store, _ = folders
    digest = json.loads((store / "tiny" / "template.json").read_text())["hash"]
    for name in [r["name"] for r in json.loads(run("list", "--json", "--dir", str(store)).output)]:
        result = run("delete", name, "--dir", str(store))
        assert result.exit_code == 0, result.output
    assert not (store / "builds" / digest).exists()
    assert json.loads(run("list", "--json", "--dir", str(store)).output) == []


def test_a_failed_step_leaves_nothing_behind(tmp_path: Path) -> None:
    store = tmp_path / "templates"
    (tmp_path / "broken.toml").write_text('base = "bookworm"\napt = ["no-such-package-e2bq"]\n')

    result = CliRunner().invoke(
        template, ["build", "broken", "--from", str(tmp_path / "broken.toml"), "--dir", str(store)]
    )

    assert result.exit_code == 1
    assert "template step 'debian' failed" in result.output
    assert "no-such-package-e2bq" in result.output  # the step's own output says why
    assert not (store / "broken").exists()
    assert list((store / "builds").glob("*")) == []
    assert list((store / ".staging").iterdir()) == []
