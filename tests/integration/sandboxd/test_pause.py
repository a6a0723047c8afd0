"""Pause with memory kept, and resume, as E2B's SDK drives them (sync and async).

A paused sandbox's processes are frozen: they use no CPU and keep their memory. Its timeout
clock stops, it does not count against ``--max-sandboxes``, and requests to it answer as E2B's
proxy answers for a paused sandbox, unless it was created with ``auto_resume``. ``connect``
resumes it. CPU is read from the host's /proc (the tests run as root), never from the sandbox.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2b import (
    RateLimitException,
    SandboxException,
    SandboxNotFoundException,
    SandboxNotRunningException,
    SandboxQuery,
    SandboxState,
)
from e2b_code_interpreter import AsyncSandbox, Sandbox

from tests.integration.sandboxd.test_servers import published_url
from tests.procs import SandboxHostProcess, sandbox_host, wait_for
from tests.security.harness import run
from tests.security.probes import host_pids_running, jail_pids, real_and_effective_uids
from tests.security.test_privileges import SYSCALL_PROBE, status_fields


def cpu_ticks(pid: int) -> int:
    """User plus system CPU time of ``pid`` so far, in clock ticks (from the host's /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # utime, stime: the 14th and 15th fields


def start_busy_loop(sandbox: Sandbox) -> int:
    """A process spinning on the CPU inside ``sandbox``; its host pid once it has used some CPU."""
    marker = f"busy-{uuid.uuid4().hex}"
    sandbox.commands.run(f"python -c 'while True: pass' {marker}", background=True, timeout=0)
    pids = wait_for(lambda: host_pids_running(marker), 10, "the busy loop")
    assert isinstance(pids, list) and len(pids) == 1
    pid = int(pids[0])
    first = cpu_ticks(pid)
    wait_for(lambda: cpu_ticks(pid) > first, 10, "the busy loop to use CPU")
    return pid


def state_of(sandbox_id: str) -> str:
    return str(Sandbox.get_info(sandbox_id).state.value)


@pytest.fixture
def sandbox(sdk_env: SandboxHostProcess) -> Iterator[Sandbox]:
    sbx = Sandbox.create(timeout=300)
    try:
        yield sbx
    finally:
        sbx.kill()


def test_pause_freezes_the_processes_and_keeps_their_memory(sandbox: Sandbox) -> None:
    sandbox.run_code("kept = [41] * 1000")
    busy = start_busy_loop(sandbox)

    assert sandbox.pause() is True
    assert state_of(sandbox.sandbox_id) == "paused"
    frozen_at = cpu_ticks(busy)
    time.sleep(0.5)
    assert cpu_ticks(busy) == frozen_at, "a paused sandbox's process went on using CPU"

    resumed = Sandbox.connect(sandbox.sandbox_id)
    assert state_of(sandbox.sandbox_id) == "running"
    assert resumed.run_code("kept[0] + 1").text == "42"
    # the same process as before the pause runs on
    wait_for(lambda: cpu_ticks(busy) > frozen_at, 10, "the busy loop to run again")


def test_pausing_twice_answers_already_paused_and_unknown_ids_not_found(sandbox: Sandbox) -> None:
    assert sandbox.pause() is True
    assert sandbox.pause() is False  # the SDK's reading of 409
    assert Sandbox.pause(sandbox.sandbox_id) is False
    with pytest.raises(SandboxNotFoundException):
        Sandbox.pause("i" + "0" * 19)


def test_requests_to_a_paused_sandbox_answer_not_running(sandbox: Sandbox) -> None:
    sandbox.files.write("/tmp/note.txt", "kept")
    sandbox.pause()

    with pytest.raises(SandboxNotRunningException, match="paused"):
        sandbox.files.read("/tmp/note.txt", request_timeout=10)
    with pytest.raises(SandboxException):  # the interpreter's 502: a TimeoutException
        sandbox.run_code("1", request_timeout=10)

    Sandbox.connect(sandbox.sandbox_id)
    assert sandbox.files.read("/tmp/note.txt") == "kept"


def test_the_timeout_clock_stops_while_paused_and_restarts_on_connect(sdk_env: SandboxHostProcess) -> None:
    sandbox = Sandbox.create(timeout=3)
    try:
        sandbox.pause()
        time.sleep(4)  # past its timeout: a running sandbox would be gone
        assert state_of(sandbox.sandbox_id) == "paused"
        Sandbox.connect(sandbox.sandbox_id, timeout=120)
        info = Sandbox.get_info(sandbox.sandbox_id)
        left = (info.end_at - info.started_at).total_seconds()
        assert info.state.value == "running" and left > 100
        assert sandbox.commands.run("echo back").stdout == "back\n"
    finally:
        sandbox.kill()


def test_killing_a_paused_sandbox_ends_its_processes(sdk_env: SandboxHostProcess) -> None:
    sandbox = Sandbox.create(timeout=60)
    busy = start_busy_loop(sandbox)
    sandbox.pause()
    assert sandbox.kill() is True
    wait_for(lambda: not Path(f"/proc/{busy}").exists(), 10, "the frozen process to end")
    with pytest.raises(SandboxException):
        Sandbox.connect(sandbox.sandbox_id)


def test_paused_sandboxes_do_not_count_against_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with sandbox_host(tmp_path, "--max-sandboxes", "1") as host:
        for name, value in host.env.items():
            monkeypatch.setenv(name, value)
        first = Sandbox.create(timeout=60)
        first.run_code("x = 'first'")
        first.pause()
        second = Sandbox.create(timeout=60, retries=0)
        try:
            # resuming the first now would run two: refused as a create past the cap is
            with pytest.raises(RateLimitException):
                Sandbox.connect(first.sandbox_id, retries=0)
            assert state_of(first.sandbox_id) == "paused"
        finally:
            second.kill()
        Sandbox.connect(first.sandbox_id, retries=0)
        assert first.run_code("x").text == "first"
        first.kill()


def test_on_timeout_pause_pauses_instead_of_killing(sdk_env: SandboxHostProcess) -> None:
    sandbox = Sandbox.create(timeout=2, lifecycle={"on_timeout": "pause"})
    try:
        sandbox.run_code("value = 'kept'")
        wait_for(lambda: state_of(sandbox.sandbox_id) == "paused", 15, "the pause at the timeout")
        info = Sandbox.get_info(sandbox.sandbox_id)
        assert info.lifecycle is not None and info.lifecycle["on_timeout"] == "pause"
        with pytest.raises(SandboxNotRunningException):  # no auto_resume: a request does not wake it
            sandbox.files.list("/", request_timeout=10)
        listed = Sandbox.list(query=SandboxQuery(state=[SandboxState.PAUSED])).next_items()
        assert sandbox.sandbox_id in [s.sandbox_id for s in listed]
        Sandbox.connect(sandbox.sandbox_id, timeout=60)
        assert sandbox.run_code("value == 'kept'").text == "True"
    finally:
        sandbox.kill()


def test_auto_resume_wakes_a_paused_sandbox_on_a_request(sdk_env: SandboxHostProcess) -> None:
    sandbox = Sandbox.create(timeout=2, lifecycle={"on_timeout": "pause", "auto_resume": True})
    try:
        sandbox.run_code("value = 7")
        info = Sandbox.get_info(sandbox.sandbox_id)
        assert info.lifecycle == {"on_timeout": "pause", "auto_resume": True}
        wait_for(lambda: state_of(sandbox.sandbox_id) == "paused", 15, "the pause at the timeout")
        assert sandbox.run_code("value * 6").text == "42"  # the request resumed it
        assert state_of(sandbox.sandbox_id) == "running"
        sandbox.pause()  # an explicit pause is woken by a request just the same
        assert sandbox.commands.run("echo awake").stdout == "awake\n"
    finally:
        sandbox.kill()


def test_auto_resume_wakes_it_on_a_published_port(sdk_env: SandboxHostProcess) -> None:
    sandbox = Sandbox.create(timeout=300, lifecycle={"on_timeout": "pause", "auto_resume": True})
    try:
        sandbox.commands.run("python -m http.server 8000", background=True, timeout=0)
        url = published_url(sandbox, 8000)
        wait_for(lambda: httpx.get(url, timeout=5).status_code == 200, 20, "the server")
        sandbox.pause()
        assert httpx.get(url, timeout=10).status_code == 200
        assert state_of(sandbox.sandbox_id) == "running"
    finally:
        sandbox.kill()


def test_a_resumed_sandbox_is_as_confined_as_a_new_one(sandbox: Sandbox) -> None:
    sandbox.pause()
    Sandbox.connect(sandbox.sandbox_id)

    assert run(sandbox, "id -un; id -u").stdout == "user\n1000\n"
    status = status_fields(sandbox)
    assert status["NoNewPrivs"] == "1" and status.get("Seccomp") == "2"
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[field], 16) == 0, field
    sandbox.files.write("/tmp/syscalls.py", SYSCALL_PROBE)
    outcomes = json.loads(run(sandbox, "python /tmp/syscalls.py").stdout)
    assert {name: o for name, o in outcomes.items() if o[0] != -1} == {}
    # nothing inside can thaw or freeze itself: the cgroup files are not in its view
    assert run(sandbox, "echo THAWED > /sys/fs/cgroup/freezer/freezer.state").exit_code != 0
    assert run(sandbox, "echo 0 > /sys/fs/cgroup/cgroup.freeze").exit_code != 0
    pids = jail_pids(sandbox.sandbox_id)
    assert pids
    for pid in pids:
        # every process of the jail is still in the sandbox's own cgroups (the next pause
        # freezes them all, and its limits hold), and runs as an unprivileged host uid
        groups = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        frozen_by = [line for line in groups if ":freezer:" in line or line.startswith("0::")]
        assert any(line.endswith("/" + sandbox.sandbox_id) for line in frozen_by), (pid, groups)
        assert 0 not in real_and_effective_uids(pid)


def test_async_pause_connect_and_list(sdk_env: SandboxHostProcess) -> None:
    async def scenario() -> None:
        sandbox = await AsyncSandbox.create(timeout=120, metadata={"suite": uuid.uuid4().hex})
        try:
            await sandbox.run_code("n = 5")
            assert await sandbox.pause() is True
            assert await AsyncSandbox.pause(sandbox.sandbox_id) is False
            info = await AsyncSandbox.get_info(sandbox.sandbox_id)
            assert info.state.value == "paused"
            query = SandboxQuery(metadata=info.metadata, state=[SandboxState.PAUSED])
            paginator = AsyncSandbox.list(query=query)
            assert [s.sandbox_id for s in await paginator.next_items()] == [sandbox.sandbox_id]
            with pytest.raises(SandboxNotRunningException):
                await sandbox.files.list("/", request_timeout=10)
            resumed = await AsyncSandbox.connect(sandbox.sandbox_id)
            assert (await resumed.run_code("n * 2")).text == "10"
            assert (await AsyncSandbox.get_info(sandbox.sandbox_id)).state.value == "running"
        finally:
            await sandbox.kill()

    asyncio.run(scenario())


def test_only_a_caller_with_the_sandboxs_token_wakes_it(sdk_env: SandboxHostProcess) -> None:
    sandbox = Sandbox.create(timeout=120, lifecycle={"on_timeout": "pause", "auto_resume": True})
    try:
        sandbox.pause()
        answer = httpx.get(
            f"{sdk_env.env['E2B_SANDBOX_URL']}/files",
            params={"path": "/etc/hostname"},
            headers={"E2b-Sandbox-Id": sandbox.sandbox_id, "X-Access-Token": "not-its-token"},
        )
        assert answer.status_code == 401
        assert state_of(sandbox.sandbox_id) == "paused"
    finally:
        sandbox.kill()


def test_async_on_timeout_pause_and_auto_resume(sdk_env: SandboxHostProcess) -> None:
    async def scenario() -> None:
        sandbox = await AsyncSandbox.create(timeout=2, lifecycle={"on_timeout": "pause", "auto_resume": True})
        try:
            await sandbox.run_code("word = 'still here'")
            deadline = time.monotonic() + 15
            while (await AsyncSandbox.get_info(sandbox.sandbox_id)).state.value != "paused":
                assert time.monotonic() < deadline, "not paused at its timeout"
                await asyncio.sleep(0.1)
            assert (await sandbox.run_code("word.upper()")).text == "STILL HERE"
            assert (await AsyncSandbox.get_info(sandbox.sandbox_id)).state.value == "running"
        finally:
            await sandbox.kill()

    asyncio.run(scenario())
