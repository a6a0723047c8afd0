"""Clearing a sandbox's processes before a new agent starts: in a real bubblewrap jail, and never
outside one. (The supervisor itself is tested in tests/integration/sandboxd/test_agent_restart.py.)"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from e2bq.sandboxd.agent import supervisor
from e2bq.sandboxd.jail.bwrap import system_binds

AGENT_PACKAGE = Path(supervisor.__file__).parent
PYTHON = "/usr/bin/python3"  # Debian's, under /usr: the jail sees it

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None or not Path(PYTHON).exists(), reason="needs bubblewrap and /usr/bin/python3"
)

CLEARING = """
import os, subprocess, sys
sys.path.insert(0, "/opt/lib")
from agent import supervisor

spared = subprocess.Popen(["sleep", "1000"])
doomed = [subprocess.Popen(["sleep", "1000"], start_new_session=True) for _ in range(3)]
orphan = subprocess.Popen(["sh", "-c", "sleep 1000 & exit 0"])  # its sleep lands on the init
orphan.wait()
supervisor.clear_processes(spare={spared.pid})
killed = all(p.wait() == -9 for p in doomed)  # reaped: no zombie left for pgrep to list
left = subprocess.run(["pgrep", "-x", "sleep"], capture_output=True, text=True).stdout.split()
print(sorted(int(pid) for pid in left) == [spared.pid], killed)
"""


def test_in_a_jail_every_process_but_the_spared_ones_is_killed() -> None:
    command = [
        "bwrap", "--unshare-pid", "--die-with-parent", *system_binds(), "--proc", "/proc", "--dev", "/dev",
        "--ro-bind", str(AGENT_PACKAGE), "/opt/lib/agent", PYTHON, "-c", textwrap.dedent(CLEARING),
    ]

    result = subprocess.run(command, capture_output=True, text=True, timeout=120)

    assert result.stdout == "True True\n", result.stderr


def test_outside_a_jail_nothing_is_cleared() -> None:
    sleeper = subprocess.Popen(["sleep", "1000"])
    try:
        supervisor.clear_processes(spare=set())
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()
