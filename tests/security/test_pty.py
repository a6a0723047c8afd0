"""A PTY session is confined like any command: same jail, same user, same network fence, and its
output is cut at the sandbox's allowance, so a flood on a terminal costs the host nothing."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2b import CommandExitException, PtySize
from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess
from tests.security.harness import assert_host_and_neighbour_answer
from tests.security.probes import (
    Listener,
    host_addresses,
    host_listener,
    jail_agent,
    jail_pids,
    jail_processes_running,
    real_and_effective_uids,
    vm_rss_kib,
)

OUTPUT_BYTES = 100_000
MARKER = b"[e2bq: output truncated]"
WAIT = 60.0


class Session:
    """A PTY and everything it printed."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.handle = sandbox.pty.create(PtySize(rows=24, cols=80), timeout=0)
        self.data = bytearray()
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()

    def _follow(self) -> None:
        try:
            for _, _, pty in self.handle:
                if pty:
                    self.data.extend(pty)
        except Exception:  # a killed session's stream: what it printed is what is asserted
            return

    def type(self, line: str) -> None:
        self.sandbox.pty.send_stdin(self.handle.pid, line.encode() + b"\n")

    def wait_for(self, text: bytes) -> None:
        ends = time.monotonic() + WAIT
        while text not in self.data:
            assert time.monotonic() < ends, f"{text!r} never came: {bytes(self.data)[-2000:]!r}"
            time.sleep(0.05)


@pytest.fixture
def redis_like() -> Iterator[Listener]:
    with host_listener() as listener:
        yield listener


def test_a_pty_shell_runs_in_the_jail_as_the_sandbox_user(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox()
    session = Session(sandbox)
    session.type("sleep 4747")
    ends = time.monotonic() + WAIT
    while not (found := jail_processes_running(sandbox.sandbox_id, "sleep 4747")):
        assert time.monotonic() < ends, "the job never showed up in the jail"
        time.sleep(0.1)
    [sleeper] = found
    assert sleeper in jail_pids(sandbox.sandbox_id)
    assert 0 not in real_and_effective_uids(sleeper)
    sandbox.pty.kill(session.handle.pid)
    ends = time.monotonic() + WAIT
    while jail_processes_running(sandbox.sandbox_id, "sleep 4747"):
        assert time.monotonic() < ends, "the job outlived its killed session"
        time.sleep(0.1)


def test_a_pty_reaches_neither_host_files_nor_host_services(
    make_sandbox: Callable[..., Sandbox],
    canary: Path,
    redis_like: Listener,
    host: SandboxHostProcess,
    neighbour: Sandbox,
) -> None:
    sandbox = make_sandbox()
    session = Session(sandbox)
    targets = [("127.0.0.1", redis_like.port), *[(address, redis_like.port) for address in host_addresses()]]
    probe = (
        "import json, socket, sys\n"
        "out = {}\n"
        "for h, p in json.loads(sys.argv[1]):\n"
        "    try:\n"
        "        socket.create_connection((h, p), timeout=3).close(); out[h] = 'connected'\n"
        "    except OSError as exc:\n"
        "        out[h] = type(exc).__name__\n"
        "print('OUT=' + json.dumps(out))\n"
    )
    sandbox.files.write("/tmp/probe.py", probe)
    session.type(f"cat {canary} 2>&1; echo 'pwned' > {canary}; echo CANARY-$((1 + 1))")
    session.type(f"python /tmp/probe.py '{json.dumps(targets)}'; echo PROBE-$((1 + 1))")
    session.wait_for(b"PROBE-2")
    screen = bytes(session.data)
    secret = canary.read_text()
    assert secret.encode() not in screen
    assert secret.startswith("host canary")  # unchanged
    found = re.search(rb"OUT=(\{.*?\})\r\n", screen)
    assert found is not None, screen
    reached = {h: o for h, o in json.loads(found[1]).items() if o == "connected"}
    assert reached == {}
    assert redis_like.accepted == []
    assert_host_and_neighbour_answer(host, neighbour)


def test_a_pty_output_flood_is_cut_and_the_host_stays_small(
    make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess, neighbour: Sandbox
) -> None:
    sandbox = make_sandbox(metadata={"e2bq.output_bytes": str(OUTPUT_BYTES)})
    session = Session(sandbox)
    host_before = vm_rss_kib(host.proc.pid)
    # 200 MB typed into the terminal's output: the shell keeps running, the caller gets the cap
    session.type("head -c 200000000 /dev/zero | tr '\\0' y; echo FLOOD-DONE > /tmp/flood-done")
    ends = time.monotonic() + 5 * WAIT
    while sandbox.commands.run("cat /tmp/flood-done 2>/dev/null || true").stdout != "FLOOD-DONE\n":
        assert time.monotonic() < ends, "the flood never finished"
        time.sleep(0.5)
    session.wait_for(MARKER)
    assert len(session.data) <= OUTPUT_BYTES + len(MARKER) + 2
    assert vm_rss_kib(host.proc.pid) - host_before < 150 * 1024
    assert vm_rss_kib(jail_agent(sandbox.sandbox_id)) < 200 * 1024
    sandbox.pty.send_stdin(session.handle.pid, b"exit 4\n")
    with pytest.raises(CommandExitException) as raised:
        session.thread.join(WAIT)
        session.handle.wait()
    assert raised.value.exit_code == 4
    assert_host_and_neighbour_answer(host, neighbour)
