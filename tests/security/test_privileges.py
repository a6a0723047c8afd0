"""Least privilege inside a sandbox: the unprivileged ``user``, no capabilities, no new privileges,
a seccomp filter against the kernel's dangerous calls, and no reach into other processes."""

from __future__ import annotations

import errno
import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from e2b import SandboxException
from e2b_code_interpreter import Sandbox

from tests.procs import TEMPLATES_DIR, SandboxHostProcess
from tests.security.harness import assert_host_and_neighbour_answer, run
from tests.security.probes import cmdline, descendants, host_pids_running, real_and_effective_uids

# Each call runs in a throw-away child (so a call that works changes nothing that matters) and
# reports [return value, errno]. x86-64 system call numbers.
SYSCALL_PROBE = r"""
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
CALLS = {
    "ptrace(TRACEME)": (101, 0, 0, 0, 0),
    "unshare(NEWUSER)": (272, 0x10000000),
    "unshare(NEWNS)": (272, 0x00020000),
    "unshare(NEWNET)": (272, 0x40000000),
    "mount(tmpfs)": (165, b"x", b"/tmp", b"tmpfs", 0, 0),
    "bpf(MAP_CREATE)": (321, 0, 0, 0),
    "keyctl(GET_KEYRING_ID)": (250, 0, -3, 1),
    "add_key": (248, b"user", b"e2bq", b"secret", 6, -3),
    "perf_event_open": (298, 0, 0, -1, -1, 0),
    "userfaultfd": (323, 0),
    "setns": (308, -1, 0),
    "kexec_load": (246, 0, 0, 0, 0),
    "init_module": (175, 0, 0, b""),
}
outcomes = {}
for name, (number, *args) in CALLS.items():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        ret = libc.syscall(number, *args)
        os.write(write, json.dumps([ret, ctypes.get_errno()]).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    outcomes[name] = json.loads(os.read(read, 100))
print(json.dumps(outcomes))
"""


def status_fields(sandbox: Sandbox) -> dict[str, str]:
    text = run(sandbox, "cat /proc/self/status").stdout
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def test_code_runs_as_the_unprivileged_user(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox()
    assert run(sandbox, "id -un; id -u; echo $HOME").stdout == "user\n1000\n/home/user\n"
    kernel = sandbox.run_code("import os, pwd; print(pwd.getpwuid(os.getuid()).pw_name)")
    assert kernel.logs.stdout == ["user\n"]


def test_no_capabilities_and_no_new_privileges(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox()
    status = status_fields(sandbox)
    assert status["NoNewPrivs"] == "1"
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[field], 16) == 0, field
    # the kernel and its children too
    kernel_status = "".join(sandbox.run_code("print(open('/proc/self/status').read())").logs.stdout)
    assert "NoNewPrivs:\t1" in kernel_status
    assert "CapEff:\t0000000000000000" in kernel_status


def test_a_seccomp_filter_is_in_force(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox()
    assert status_fields(sandbox).get("Seccomp") == "2"  # SECCOMP_MODE_FILTER


def test_dangerous_system_calls_are_refused(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, neighbour: Sandbox
) -> None:
    sandbox = make_sandbox()
    sandbox.files.write("/tmp/syscalls.py", SYSCALL_PROBE)

    outcomes = json.loads(run(sandbox, "python /tmp/syscalls.py").stdout)

    allowed = {name: outcome for name, outcome in outcomes.items() if outcome[0] != -1}
    assert allowed == {}, "these calls worked inside a sandbox"
    # refused by policy (EPERM), or unknown to it (ENOSYS): not merely given bad arguments
    wrong = {n: o for n, o in outcomes.items() if o[1] not in (errno.EPERM, errno.ENOSYS)}
    assert wrong == {}
    assert_host_and_neighbour_answer(host, neighbour)


@pytest.mark.parametrize(
    "attempt",
    [
        "unshare -U true",
        "unshare -Ur true",
        "unshare -m true",
        "unshare -n true",
        "mkdir -p /tmp/x && mount -t tmpfs x /tmp/x",
        "strace -f true",
        # exits 0 only if ptrace worked
        "python -c 'import ctypes, sys; sys.exit(ctypes.CDLL(None).ptrace(0, 0, 0, 0) == -1)'",
        "su -c id root < /dev/null",
    ],
)
def test_privileged_tools_fail(
    attempt: str, make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, neighbour: Sandbox
) -> None:
    sandbox = make_sandbox()
    assert run(sandbox, attempt).exit_code != 0
    assert_host_and_neighbour_answer(host, neighbour)


def test_a_sandbox_cannot_signal_another_sandboxs_processes(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, neighbour: Sandbox
) -> None:
    marker = f"sleep {uuid.uuid4().int % 10**6}.{uuid.uuid4().int % 10**5}"
    target = neighbour.commands.run(marker, background=True, timeout=0)
    attacker = make_sandbox()
    try:
        [host_pid] = host_pids_running(marker)
        # the target's pid as its own sandbox sees it, the host's pid, and sandboxd's
        for pid in (target.pid, host_pid, host.proc.pid):
            run(attacker, f"kill -9 {pid}; kill -STOP {pid}; true")
        attacker.commands.kill(target.pid)

        assert host_pids_running(marker) == [host_pid]
        assert target.pid in [p.pid for p in neighbour.commands.list()]
        assert_host_and_neighbour_answer(host, neighbour)
    finally:
        neighbour.commands.kill(target.pid)


def test_a_sandbox_cannot_trace_processes_of_its_own(make_sandbox: Callable[..., Sandbox]) -> None:
    """Not even its own agent (PTRACE_SEIZE: were it allowed, it would not stop the agent)."""
    sandbox = make_sandbox()
    agent = run(sandbox, "pgrep -f agent.server | head -1").stdout.strip()
    assert agent
    seize = f"python -c 'import ctypes; print(ctypes.CDLL(None).ptrace(0x4206, {agent}, 0, 0))'"
    assert run(sandbox, seize).stdout.strip() == "-1"
    assert run(sandbox, "echo still answering").stdout == "still answering\n"


def test_asking_the_sdk_for_root_gives_the_user_all_the_same(make_sandbox: Callable[..., Sandbox]) -> None:
    """On the host's system folders there is no root inside; on a built template root inside is
    served, as a host uid range of the sandbox's own (tests/integration/templates/test_root_inside)."""
    sandbox = make_sandbox()
    built = Path(TEMPLATES_DIR, "code-interpreter-v1", "template.json")
    on_template = bool(TEMPLATES_DIR) and built.is_file()
    assert sandbox.commands.run("id -u", user="root").stdout == ("0\n" if on_template else "1000\n")
    # the files API acts as the sandbox's user either way
    with pytest.raises(SandboxException):
        sandbox.files.read("/etc/shadow", user="root")
    with pytest.raises(SandboxException):
        sandbox.files.write("/usr/bin/e2bq-planted", "pwned", user="root")


def test_nothing_sandboxd_runs_for_a_sandbox_holds_root_s_power_on_the_host(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess
) -> None:
    """The jail and its helpers run unprivileged. Two exceptions: slirp4netns (it parses every
    packet the sandbox sends) keeps uid 0 to join the namespace, so it must hold no capability
    but binding low ports, and run under a seccomp filter, in its own empty root; the kernel fork
    server keeps uid 0 to enter jails, with only the four capabilities that takes, and talks to
    sandboxd alone (its socket is in a folder only root reaches)."""
    sandbox = make_sandbox(allow_internet_access=True)
    assert run(sandbox, "echo up").stdout == "up\n"

    as_root = {
        pid: cmdline(pid)[:120]
        for pid in descendants(host.proc.pid)
        if 0 in real_and_effective_uids(pid)
    }
    slirps = {pid: line for pid, line in as_root.items() if "slirp4netns" in line}
    forkservers = {pid: line for pid, line in as_root.items() if "agent.forkserver.server" in line}
    assert slirps, "a sandbox with internet has a slirp4netns"
    assert forkservers, "sandboxd, as root, runs a kernel fork server"  # and a child per request
    assert {pid: line for pid, line in as_root.items() if pid not in slirps and pid not in forkservers} == {}
    net_bind_service = 1 << 10
    for pid in slirps:
        status = _status(pid)
        assert int(status["CapEff"], 16) & ~net_bind_service == 0, slirps[pid]
        assert int(status["CapPrm"], 16) & ~net_bind_service == 0, slirps[pid]
        assert status["Seccomp"] == "2", slirps[pid]
    setgid, sys_chroot, sys_ptrace, sys_admin = 6, 18, 19, 21
    allowed = sum(1 << cap for cap in (setgid, sys_chroot, sys_ptrace, sys_admin))
    for pid in forkservers:
        status = _status(pid)
        if not status:  # a request's child that has finished since
            continue
        for field in ("CapEff", "CapPrm", "CapBnd"):
            assert int(status[field], 16) & ~allowed == 0, (field, forkservers[pid])
    folder = host.state_dir / "forkserver"
    assert folder.stat().st_uid == 0 and folder.stat().st_mode & 0o077 == 0


def _status(pid: int) -> dict[str, str]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}
