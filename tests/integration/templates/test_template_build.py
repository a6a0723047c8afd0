"""Building a template for real: Debian's archive, PyPI, a file and a command, then the cache.

The build is the smallest that still touches every step (minbase, one apt package, one pip package,
one file, one command): about a minute here. Deselect with ``-m "not network"`` where Debian's
archive is out of reach; CI (``CI=true``) fails instead of skipping, so it cannot pass unseen.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from e2bq.sandboxd.templates.cli import template

pytestmark = [pytest.mark.slow, pytest.mark.network, pytest.mark.timeout(600)]


@pytest.fixture(autouse=True)
def _can_build(tiny_template: tuple[Path, Path]) -> None:
    """Every test here needs what a build needs (root, mmdebstrap, Debian's archive)."""


def run(*args: str) -> Result:
    return CliRunner().invoke(template, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def folders(tiny_template: tuple[Path, Path]) -> tuple[Path, Path]:
    """(the templates folder, the template file) with the tiny template built once."""
    return tiny_template


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
