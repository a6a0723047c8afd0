"""The sandbox's agent (envd and the interpreter) killed by code inside the sandbox comes back, as
E2B's template restarts its services: the sandbox answers again, with its files, a fresh kernel,
and none of the processes it ran before."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from e2b_code_interpreter import Sandbox

from e2bq.sandboxd.agent import supervisor

CONFINEMENT = "id -u; grep -E '^(CapEff|CapBnd|Seccomp|NoNewPrivs)' /proc/self/status; cat /proc/self/cgroup"
WAIT = 60.0  # seconds the agent gets to come back: generous, the machine is shared


def _kill_agent(sandbox: Sandbox, command: str) -> None:
    """Run ``command`` detached, a moment after this call returns (it ends the agent that runs it)."""
    sandbox.commands.run(f"(sleep 0.3; {command}) >/dev/null 2>&1 &", timeout=30)


def _wait_for_new_kernel(sandbox: Sandbox) -> None:
    """Until ``marker`` is unknown: the agent that answers is a new one, with a new kernel."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            execution = sandbox.run_code("marker", timeout=10)
        except Exception:  # the agent is down for a moment: the SDK's errors vary with the instant
            time.sleep(0.2)
            continue
        if execution.error is not None and execution.error.name == "NameError":
            return
        time.sleep(0.2)
    pytest.fail(f"no new agent answered within {WAIT}s")


@pytest.mark.parametrize(
    "command",
    [
        pytest.param("pkill -9 -f 'agent[.]server'", id="sigkill"),
        pytest.param("pkill python", id="sigterm-every-python"),
    ],
)
def test_a_killed_agent_comes_back_with_the_files_and_without_the_old_processes(
    sandbox: Sandbox, command: str
) -> None:
    sandbox.files.write("/home/user/kept.txt", "still here")
    assert sandbox.run_code("marker = 41 + 1").error is None
    sleeper = sandbox.commands.run("sleep 1000", background=True)

    _kill_agent(sandbox, command)
    _wait_for_new_kernel(sandbox)

    assert sandbox.files.read("/home/user/kept.txt") == "still here"
    assert sandbox.run_code("6 * 7").text == "42"
    assert sandbox.commands.run("echo again").stdout == "again\n"
    running = {process.pid for process in sandbox.commands.list()}
    assert sleeper.pid not in running
    assert sandbox.commands.run("pgrep -x sleep || echo none").stdout == "none\n"


def test_the_restarted_agent_is_as_confined_as_the_first(sandbox: Sandbox) -> None:
    before = sandbox.commands.run(CONFINEMENT).stdout
    _kill_agent(sandbox, "pkill -9 -f 'agent[.]server'")
    _wait_for_new_kernel(sandbox)
    after = sandbox.commands.run(CONFINEMENT).stdout
    assert after == before
    assert after.startswith("1000\n")
    assert "CapEff:\t0000000000000000" in after


def test_the_supervisor_ignores_polite_signals(sandbox: Sandbox) -> None:
    assert sandbox.commands.run("pgrep -f 'e2bq[-]supervisor'").exit_code == 0
    polite = "for s in TERM INT HUP QUIT USR1 USR2; do pkill -$s -f 'e2bq[-]supervisor'; done; true"
    sandbox.commands.run(polite)
    assert sandbox.commands.run("pgrep -f 'e2bq[-]supervisor' >/dev/null && echo alive").stdout == "alive\n"
    assert sandbox.run_code("1 + 1").text == "2"


def test_an_agent_that_keeps_dying_is_given_up_and_the_sandbox_ends(sandbox: Sandbox) -> None:
    """Killed from the host (a killer inside would be cleared with the sandbox's processes)."""
    procs = _cgroup_procs(sandbox.sandbox_id)
    for _ in range(supervisor.MAX_RESTARTS):
        agent = _agent_pid(procs)
        os.kill(agent, signal.SIGKILL)
        _wait_until(lambda agent=agent: _agent_pid(procs, missing_ok=True) not in (None, agent))
        _wait_for_answer(sandbox)
    os.kill(_agent_pid(procs), signal.SIGKILL)
    _wait_until(lambda: not sandbox.is_running())


def _cgroup_procs(sandbox_id: str) -> Path:
    found = sorted(Path("/sys/fs/cgroup").glob(f"*/e2bq-*/{sandbox_id}/cgroup.procs"))
    if not found:
        pytest.skip("needs sandboxd's cgroups (root)")
    return found[0]


def _agent_pid(procs: Path, *, missing_ok: bool = False) -> int | None:
    for pid in procs.read_text().split():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        is_agent = b"agent.server" in cmdline or b"import restart" in cmdline
        if is_agent and b"e2bq-supervisor" not in cmdline:
            return int(pid)
    if missing_ok:
        return None
    raise AssertionError("no agent in the sandbox")


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {WAIT}s")
        time.sleep(0.1)


def _wait_for_answer(sandbox: Sandbox) -> None:
    def answers() -> bool:
        try:
            return sandbox.commands.run("true", timeout=10).exit_code == 0
        except Exception:  # the agent is down for a moment
            return False

    _wait_until(answers)
