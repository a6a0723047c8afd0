"""A SIGKILLed sandboxd leaves its sandboxes' disk images mounted on loop devices. The next sandboxd
start reclaims them even with another state folder, and so does ``e2bq doctor --fix``; a running
sandboxd's mounts are left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess, sandbox_host, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="disk images need root")


def mounts_under(folder: Path) -> list[str]:
    prefix = str(folder) + "/"
    return [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4].startswith(prefix)
    ]


def loops_under(folder: Path) -> list[str]:
    found = []
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        try:
            if backing.read_text().startswith(str(folder) + "/"):
                found.append(backing.parent.parent.name)
        except OSError:
            continue
    return found


def make_sandboxes(host: SandboxHostProcess, count: int) -> list[Sandbox]:
    options = {"api_key": host.api_key, "api_url": host.url, "sandbox_url": host.url}
    made = [Sandbox.create(timeout=300, **options) for _ in range(count)]  # type: ignore[arg-type]
    wait_for(lambda: len(mounts_under(host.state_dir)) >= count, 30, f"{count} disk images mounted")
    return made


@pytest.fixture
def killed_host(tmp_path: Path) -> Iterator[SandboxHostProcess]:
    """A sandboxd with two sandboxes, SIGKILLed: its disk images stay mounted."""
    with sandbox_host(tmp_path / "killed") as host:
        make_sandboxes(host, 2)
        host.proc.send_signal(signal.SIGKILL)
        host.proc.wait(timeout=30)
        assert len(mounts_under(host.state_dir)) >= 2  # a warm pool's sandboxes may add theirs
        assert len(loops_under(host.state_dir)) >= 2
        yield host


@pytest.fixture
def live_sandbox(sandboxd: SandboxHostProcess) -> Iterator[list[str]]:
    """A sandbox of the session's running sandboxd, and its mounts."""
    (sandbox,) = make_sandboxes(sandboxd, 1)
    try:
        own = [point for point in mounts_under(sandboxd.state_dir) if sandbox.sandbox_id in point]
        assert own
        yield own
    finally:
        sandbox.kill()


def test_the_next_start_reclaims_them_whatever_its_state_folder(
    killed_host: SandboxHostProcess, live_sandbox: list[str], sandboxd: SandboxHostProcess, tmp_path: Path
) -> None:
    with sandbox_host(tmp_path / "next"):  # a fresh state folder of its own
        assert mounts_under(killed_host.state_dir) == []
        assert loops_under(killed_host.state_dir) == []
        assert not list(killed_host.state_dir.glob("*/disk.*.img"))
        assert set(live_sandbox) <= set(mounts_under(sandboxd.state_dir))


def test_doctor_fix_reclaims_them(
    killed_host: SandboxHostProcess, live_sandbox: list[str], sandboxd: SandboxHostProcess
) -> None:
    fixed = subprocess.run(
        [sys.executable, "-m", "e2bq.cli", "doctor", "--fix"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert f"unmounted {killed_host.state_dir}" in fixed.stdout, fixed.stdout + fixed.stderr
    assert mounts_under(killed_host.state_dir) == []
    assert loops_under(killed_host.state_dir) == []
    assert set(live_sandbox) <= set(mounts_under(sandboxd.state_dir))
    again = subprocess.run(
        [sys.executable, "-m", "e2bq.cli", "doctor", "--fix"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert f"{killed_host.state_dir}" not in again.stdout
