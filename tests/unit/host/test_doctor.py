"""``e2bq doctor`` and sandboxd's start-up checks, run as a user would run them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.procs import free_port

# Every tool the checks look for, except bubblewrap: a PATH of links to these is a host without it.
TOOLS_BUT_BWRAP = ("setpriv", "slirp4netns", "ip", "iptables", "losetup", "mkfs.ext4")


def e2bq(
    *args: str, path: str | None = None, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(env or {})}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "e2bq.cli", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


@pytest.fixture
def path_without_bwrap(tmp_path: Path) -> str:
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in TOOLS_BUT_BWRAP:
        found = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
        assert found, f"this test host lacks {tool}"
        (folder / tool).symlink_to(found)
    return str(folder)


def test_every_item_is_present_on_this_host() -> None:
    done = e2bq("doctor")
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stdout + done.stderr
    items = [line for line in lines if line.startswith(("OK", "MISSING"))]
    assert len(items) >= 10
    assert all(line.startswith("OK ") for line in items), items
    for item in ("bubblewrap", "namespaces", "cgroups", "slirp4netns", "/dev/net/tun", "iptables",
                 "loop devices", "mkfs.ext4", "sandbox runtime"):
        assert any(item in line for line in items), f"no line for {item}"


def test_a_host_without_bubblewrap_is_told_which_package_to_install(path_without_bwrap: str) -> None:
    done = e2bq("doctor", path=path_without_bwrap)
    assert done.returncode == 1
    assert "MISSING  bubblewrap: bwrap not found; apt-get install bubblewrap" in done.stdout.splitlines()
    assert "OK       slirp4netns" in done.stdout  # the rest is still checked, one line each
    assert "Traceback" not in done.stdout + done.stderr


def test_sandboxd_will_not_start_without_bubblewrap(path_without_bwrap: str) -> None:
    done = e2bq("sandboxd", "--local", "--port", str(free_port()), path=path_without_bwrap)
    assert done.returncode != 0
    assert "MISSING  bubblewrap: bwrap not found; apt-get install bubblewrap" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_runtime_that_is_not_built_is_named_with_the_command_that_builds_it(tmp_path: Path) -> None:
    done = e2bq("doctor", "--runtime", str(tmp_path / "nowhere"))
    assert done.returncode == 1
    line = next(line for line in done.stdout.splitlines() if "sandbox runtime" in line)
    assert line.startswith("MISSING")
    assert f"e2bq sandboxd install-runtime --target {tmp_path / 'nowhere'}" in line


def test_shipped_templates_not_built_are_a_warning_with_the_commands_that_build_them(tmp_path: Path) -> None:
    empty = tmp_path / "templates"
    done = e2bq("doctor", env={"E2BQ_SANDBOXD_TEMPLATES_DIR": str(empty)})
    assert done.returncode == 0, done.stdout + done.stderr  # sandboxd runs: a host may serve its own
    line = next(line for line in done.stdout.splitlines() if "shipped templates" in line)
    assert line.startswith("WARN ")
    assert f"code-interpreter-v1, base not built in {empty}: creates on them answer 404" in line
    assert "`e2bq template build code-interpreter-v1` and `e2bq template build base`" in line
