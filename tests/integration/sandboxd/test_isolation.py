"""Sandboxes are jails: they cannot see each other or the host, and nothing of them outlives them."""

from __future__ import annotations

import json
import random
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess, sandbox_host, stop, wait_for

CONNECT_SCRIPT = """
import json, socket, sys
outcomes = {}
for name, port in json.loads(sys.argv[1]).items():
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        outcomes[name] = "connected"
    except OSError as exc:
        outcomes[name] = type(exc).__name__
print(json.dumps(outcomes))
"""


def host_processes() -> list[tuple[int, str]]:
    """(pid, full command line) of every process on the host, as the host sees them."""
    processes = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "cmdline").read_bytes()
            except OSError:  # it ended meanwhile
                continue
            processes.append((int(entry.name), raw.replace(b"\0", b" ").decode(errors="replace")))
    return processes


def host_pids_running(text: str) -> list[int]:
    return [pid for pid, args in host_processes() if text in args]


def unique_sleep() -> str:
    """A ``sleep`` command line no other process on this machine has."""
    return f"sleep {random.randrange(10**6, 10**7)}.{random.randrange(10**5, 10**6)}"


def start_marker(sandbox: Sandbox) -> str:
    marker = unique_sleep()
    sandbox.commands.run(marker, background=True, timeout=0)
    wait_for(lambda: host_pids_running(marker), 10, f"'{marker}' to run")
    return marker


@pytest.fixture
def other(sdk_env: SandboxHostProcess) -> Iterator[Sandbox]:
    """A second sandbox on the same host."""
    sandbox = Sandbox.create(timeout=120)
    try:
        yield sandbox
    finally:
        sandbox.kill()


def test_a_sandbox_cannot_see_another_sandboxs_files(
    sandbox: Sandbox, other: Sandbox, sdk_env: SandboxHostProcess
) -> None:
    name = f"private-{random.randrange(10**9)}.txt"
    sandbox.files.write(f"/home/user/{name}", "only for the first sandbox")
    found_in_own = sandbox.commands.run(f"find / -name {name} 2>/dev/null; true").stdout
    assert found_in_own == f"/home/user/{name}\n"

    assert other.commands.run("ls -a /home").stdout.split() == [".", "..", "user"]
    assert other.commands.run(f"find / -name {name} 2>/dev/null; true").stdout == ""
    assert other.files.exists(f"/home/user/{name}") is False
    # nor through the host path of the first sandbox's home
    host_copy = sdk_env.state_dir / sandbox.sandbox_id / "data" / "home" / name
    assert host_copy.exists()
    assert other.files.exists(str(host_copy)) is False
    assert other.commands.run(f"cat {host_copy} 2>&1; true").stdout != "only for the first sandbox"


def test_a_sandbox_cannot_see_or_signal_another_sandboxs_processes(sandbox: Sandbox, other: Sandbox) -> None:
    marker = start_marker(sandbox)
    assert marker in sandbox.commands.run("ps aux").stdout
    assert marker not in other.commands.run("ps aux").stdout

    own_pid = next(p.pid for p in sandbox.commands.list() if p.args[-1] == marker)
    assert other.commands.kill(own_pid) is False
    [host_pid] = host_pids_running(marker)
    killed = other.commands.run(f"kill -9 {host_pid} 2>&1; echo status=$?")
    assert killed.stdout.strip().endswith("status=1")
    assert host_pids_running(marker) == [host_pid]
    assert own_pid in [p.pid for p in sandbox.commands.list()]


def test_a_sandbox_cannot_reach_the_hosts_loopback(sandbox: Sandbox, sdk_env: SandboxHostProcess) -> None:
    sandbox.files.write("/home/user/connect.py", CONNECT_SCRIPT)
    # a listener inside the sandbox is the control: it shows the probe itself works
    inner = sandbox.commands.run(
        "python -c \"import socket, time; s = socket.create_server(('127.0.0.1', 7000)); time.sleep(600)\"",
        background=True,
        timeout=0,
    )
    with socket.create_server(("127.0.0.1", 0)) as listener:
        ports = {
            "inside": 7000,
            "host": listener.getsockname()[1],
            "sandboxd": urlsplit(sdk_env.url).port,
        }

        def probe() -> dict[str, str]:
            run = sandbox.commands.run(f"python connect.py '{json.dumps(ports)}'")
            outcomes: dict[str, str] = json.loads(run.stdout)
            return outcomes if outcomes["inside"] == "connected" else {}

        try:
            outcomes = wait_for(probe, 20, "the probe to reach the in-sandbox listener")
        finally:
            sandbox.commands.kill(inner.pid)
        assert isinstance(outcomes, dict)
        assert outcomes["host"] != "connected"
        assert outcomes["sandboxd"] != "connected"
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing reached the host's listener either


def test_a_killed_sandbox_leaves_no_process_and_no_folder(sdk_env: SandboxHostProcess) -> None:
    sandbox = Sandbox.create(timeout=120)
    marker = start_marker(sandbox)
    folder = sdk_env.state_dir / sandbox.sandbox_id
    assert folder.is_dir()
    assert host_pids_running(sandbox.sandbox_id)  # the jail's bwrap names its folder

    assert sandbox.kill() is True
    # by the time kill has answered, nothing of the sandbox runs or remains
    assert host_pids_running(marker) == []
    assert host_pids_running(sandbox.sandbox_id) == []
    assert not folder.exists()


@pytest.fixture
def private_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxHostProcess]:
    """A sandboxd of the test's own, which the test may stop; the SDK points at it."""
    with sandbox_host(tmp_path) as host:
        for name, value in host.env.items():
            monkeypatch.setenv(name, value)
        yield host


def _two_sandboxes_with_markers(host: SandboxHostProcess) -> list[str]:
    sandboxes = [Sandbox.create(timeout=120) for _ in range(2)]
    markers = [start_marker(s) for s in sandboxes]
    assert sorted(p.name for p in host.state_dir.glob("i*")) == sorted(s.sandbox_id for s in sandboxes)
    return markers


def test_sandboxd_stopped_with_sigterm_ends_every_jail_and_clears_its_folders(
    private_host: SandboxHostProcess,
) -> None:
    markers = _two_sandboxes_with_markers(private_host)

    stop(private_host.proc)
    # uvicorn re-raises the SIGTERM it handled once it has shut down; a SIGKILL would mean
    # stop() ran out of patience
    assert private_host.proc.returncode in (0, -signal.SIGTERM), private_host.log.read_text()
    for marker in markers:
        assert host_pids_running(marker) == []
    assert host_pids_running(str(private_host.state_dir)) == []
    assert list(private_host.state_dir.glob("i*")) == []


def test_sandboxd_killed_with_sigkill_takes_every_jail_with_it(
    private_host: SandboxHostProcess,
) -> None:
    markers = _two_sandboxes_with_markers(private_host)

    private_host.proc.kill()
    private_host.proc.wait(timeout=10)
    # bwrap --die-with-parent: the kernel ends the jails, shortly after sandboxd
    for marker in markers:
        wait_for(lambda m=marker: not host_pids_running(m), 10, f"'{marker}' to end")
    wait_for(lambda: not host_pids_running(str(private_host.state_dir)), 10, "every jail to end")
