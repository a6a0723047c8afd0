"""Without the fork server (not root, or ``E2BQ_SANDBOXD_FORK_KERNELS=0``), bwrap starts the agent
and the agent spawns its kernels: the same SDK calls must behave the same on that path."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess, sandbox_host

PARENT = """
import os
print(open(f"/proc/{os.getppid()}/cmdline", "rb").read().replace(b"\\0", b" ").decode())
"""


@pytest.fixture(scope="module")
def spawning_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHostProcess]:
    tmp = Path(tmp_path_factory.mktemp("spawning"))
    with sandbox_host(tmp, env={"E2BQ_SANDBOXD_FORK_KERNELS": "0"}) as host:
        yield host


@pytest.fixture
def spawned(spawning_host: SandboxHostProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    for name, value in spawning_host.env.items():
        monkeypatch.setenv(name, value)
    sbx = Sandbox.create(timeout=120)
    try:
        yield sbx
    finally:
        sbx.kill()


def test_the_kernel_is_the_agents_child(spawned: Sandbox) -> None:
    execution = spawned.run_code(PARENT)

    assert execution.error is None, execution.error
    assert "ipykernel" not in execution.logs.stdout[0]
    assert "agent.server" in execution.logs.stdout[0]


def test_code_commands_and_contexts_work(spawned: Sandbox) -> None:
    spawned.run_code("x = 41")
    assert spawned.run_code("x + 1").text == "42"
    assert spawned.commands.run("echo $((6 * 7))").stdout == "42\n"
    context = spawned.create_code_context(cwd="/tmp")
    assert spawned.run_code("import os; os.getcwd()", context=context).text == "/tmp"  # E2B drops the quotes
    assert spawned.run_code("'x' in globals()", context=context).text == "False"


def test_a_dead_kernel_comes_back(spawned: Sandbox) -> None:
    spawned.run_code("import os; os.kill(os.getpid(), 9)")

    assert spawned.run_code("1 + 1").text == "2"


def test_a_killed_agent_comes_back_on_this_path_too(spawned: Sandbox) -> None:
    spawned.files.write("/home/user/kept.txt", "kept")
    spawned.run_code("marker = 1")
    spawned.commands.run("(sleep 0.3; pkill -9 -f 'agent[.]server') >/dev/null 2>&1 &")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            error = spawned.run_code("marker", timeout=10).error
        except Exception:  # the agent is down for a moment
            error = None
        if error is not None and error.name == "NameError":
            break
        time.sleep(0.2)
    else:
        pytest.fail("no new agent answered within 60 s")
    assert spawned.files.read("/home/user/kept.txt") == "kept"
    assert spawned.commands.run("echo up").stdout == "up\n"
