"""A kernel and an agent the host's fork server forks into a jail are as jailed as a process bwrap
starts there (the jail's holder): the same uid, capabilities, no_new_privs, seccomp filter,
namespaces, cgroups, limits and root, and code in them sees nothing of the host or of the fork
server they came from."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from e2b import TimeoutException
from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess, wait_for
from tests.security.harness import assert_host_and_neighbour_answer
from tests.security.probes import (
    children,
    cmdline,
    descendants,
    jail_agent,
    jail_pids,
    jail_processes_running,
)

STATUS_FIELDS = (
    "Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
    "NoNewPrivs", "Seccomp", "Seccomp_filters", "Umask",
)  # fmt: skip
NAMESPACES = ("user", "mnt", "ipc", "uts", "net", "pid", "cgroup")
FORKED = "agent.forkserver"  # the fork server's command line


def facts(pid: int) -> dict[str, object]:
    """What makes a process jailed, read from the host."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    root = os.stat(f"/proc/{pid}/root")
    return {
        "status": {name: status[name].split() for name in STATUS_FIELDS},
        "namespaces": {name: os.readlink(f"/proc/{pid}/ns/{name}") for name in NAMESPACES},
        "cgroup": Path(f"/proc/{pid}/cgroup").read_text(),
        "root": (root.st_dev, root.st_ino),
        "limits": Path(f"/proc/{pid}/limits").read_text(),
    }


def forked_kernels(sandbox_id: str) -> list[int]:
    """Host pids of the sandbox's kernels the fork server made: the agent's own are its children."""
    spawned = children(jail_agent(sandbox_id))
    return [pid for pid in jail_processes_running(sandbox_id, "ipykernel_launcher") if pid not in spawned]


def forked_kernel(sandbox: Sandbox) -> int:
    """Host pid of the sandbox's default kernel, which the fork server made (sandboxd is root)."""
    assert sandbox.run_code("1").error is None  # the default kernel is up
    [kernel] = forked_kernels(sandbox.sandbox_id)
    return kernel


def holder(sandbox_id: str) -> int:
    """The process bwrap started in the jail (it holds the jail open for the forked agent)."""
    [pid] = [pid for pid in jail_pids(sandbox_id) if cmdline(pid).strip() == "/usr/bin/cat"]
    return pid


def as_its_holder(process: dict[str, object], started: dict[str, object], ranged: bool) -> None:
    """``process`` is jailed as the holder. In a jail with a uid range of its own (on a template)
    the holder is root inside with no capability (bwrap cannot become another uid in a namespace
    it joins), so the ids differ, and the process must hold no capability either."""
    if not ranged:
        assert process == started
        return
    assert {**process, "status": None} == {**started, "status": None}
    status, held = process["status"], started["status"]
    assert isinstance(status, dict) and isinstance(held, dict)
    ids = ("Uid", "Gid", "Groups")
    assert {**status, **dict.fromkeys(ids)} == {**held, **dict.fromkeys(ids)}
    assert held["CapBnd"] == ["0000000000000000"] and int(status["Uid"][0]) == int(held["Uid"][0]) + 1000


def test_forked_processes_are_jailed_like_the_one_bwrap_started(make_sandbox: Callable[..., Sandbox]) -> None:
    for sandbox in (make_sandbox(), make_sandbox(allow_internet_access=True)):
        kernel, agent = forked_kernel(sandbox), jail_agent(sandbox.sandbox_id)
        held = holder(sandbox.sandbox_id)
        started, ranged = facts(held), Path(f"/proc/{held}/uid_map").read_text().split()[0] == "0"
        as_its_holder(facts(kernel), started, ranged)
        as_its_holder(facts(agent), started, ranged)
        assert facts(kernel)["status"] == facts(agent)["status"]
        status = facts(agent)["status"]
        assert isinstance(status, dict)
        assert status["Uid"] == status["Gid"] != ["0"] * 4
        assert status["CapBnd"] == ["0000000000000000"]
        assert status["Seccomp"] == ["2"]


HOSTILE = r"""
import json, os
found = {}
found["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
found["fds"] = []
for fd in os.listdir("/proc/self/fd"):
    try:
        found["fds"].append(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:  # the listing's own
        pass
maps = [line.split(maxsplit=5) for line in open("/proc/self/maps")]
found["maps"] = sorted({fields[5].strip() for fields in maps if len(fields) > 5})
found["unix"] = open("/proc/net/unix").read()
found["ppid"] = os.getppid()
found["environ"] = dict(os.environ)
print(json.dumps(found))
"""


def test_code_in_a_forked_kernel_sees_no_host_and_no_fork_server(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, neighbour: Sandbox, canary: Path
) -> None:
    sandbox = make_sandbox()
    kernel = forked_kernel(sandbox)
    execution = sandbox.run_code(HOSTILE)
    assert execution.error is None, execution.error
    found = json.loads("".join(execution.logs.stdout))
    jail = {os.readlink(f"/proc/{pid}/ns/pid") for pid in (kernel,)}
    assert len(found["pids"]) <= 8  # init, holder, agent, kernel: nothing of the host
    state = str(host.state_dir)
    for pid in (kernel, jail_agent(sandbox.sandbox_id)):  # what `ps` inside shows
        assert state not in cmdline(pid) and FORKED not in cmdline(pid), cmdline(pid)
    for fd in found["fds"]:
        assert state not in fd and "forkserver" not in fd, fd
    for path in found["maps"]:
        assert path.startswith(("/usr/", "/opt/e2bq/runtime/", "/tmp/", "/dev/", "[")), path
        assert state not in path, path
    assert "forkserver" not in found["unix"]
    assert found["ppid"] == 1  # orphaned to the jail's init, not to any host process
    assert not set(found["environ"]) & {"E2BQ_CANARY_SECRET", "HOST_CANARY_TOKEN"}
    reading = sandbox.run_code(f"open({str(canary)!r}).read()")
    assert reading.error is not None and reading.error.name in ("FileNotFoundError", "PermissionError")
    # the fork server and its socket are out of the jail's PID namespace and mount tree
    servers = [pid for pid in descendants(host.proc.pid) if FORKED in cmdline(pid) and pid != kernel]
    assert servers, "sandboxd runs a fork server when it is root"
    for server in servers:
        assert os.readlink(f"/proc/{server}/ns/pid") not in jail
    forkserver_folder = host.state_dir / "forkserver"
    assert forkserver_folder.stat().st_uid == 0 and forkserver_folder.stat().st_mode & 0o077 == 0
    assert sandbox.run_code(f"import os; os.path.exists({str(forkserver_folder)!r})").text == "False"
    assert_host_and_neighbour_answer(host, neighbour)


def test_the_agent_signals_and_replaces_a_forked_kernel(make_sandbox: Callable[..., Sandbox]) -> None:
    """Interrupts reach it; once it is killed, the next cell gets a kernel the agent spawns."""
    sandbox = make_sandbox()
    kernel = forked_kernel(sandbox)
    with pytest.raises(TimeoutException):
        sandbox.run_code("import time; time.sleep(30)", timeout=2)
    assert sandbox.run_code("x = 41; x + 1").text == "42"  # the same kernel, still alive
    assert forked_kernels(sandbox.sandbox_id) == [kernel]
    died = sandbox.run_code("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert died.error is not None
    assert sandbox.run_code("1 + 1").text == "2"
    assert forked_kernels(sandbox.sandbox_id) == []
    assert jail_processes_running(sandbox.sandbox_id, "ipykernel_launcher")


def test_the_jail_ends_with_its_forked_agent(make_sandbox: Callable[..., Sandbox]) -> None:
    """The agent and its supervisor hold the jail open: both killed, the whole jail goes and the
    sandbox is reported gone (the agent alone is started again: test_agent_restart)."""
    sandbox = make_sandbox()
    agent = jail_agent(sandbox.sandbox_id)
    [supervisor] = jail_processes_running(sandbox.sandbox_id, "e2bq-supervisor")
    os.kill(supervisor, 9)
    os.kill(agent, 9)
    wait_for(lambda: not jail_pids(sandbox.sandbox_id), 30, "the jail to end")
    wait_for(lambda: not sandbox.is_running(), 30, "the sandbox to be reported gone")
