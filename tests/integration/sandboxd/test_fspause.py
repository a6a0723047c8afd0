"""Filesystem-only pause, as E2B's SDK drives it (sync and async), and pause that survives a
restart of sandboxd.

``pause(keep_memory=False)`` / ``mode="filesystem"`` ends every process of the sandbox and keeps
its disk; ``connect`` starts a fresh agent and kernel on the same files, under the same id,
tokens, metadata and envs. Such a sandbox outlives a restart of sandboxd with the same state
folder, and a memory-paused one is moved to disk when sandboxd stops, so it does too.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2b import SandboxQuery, SandboxState
from e2b_code_interpreter import AsyncSandbox, Sandbox

from tests.procs import SandboxHostProcess, sandbox_host, unmount_under, wait_for
from tests.security.probes import host_pids_running, jail_pids

ENVS = {"KEPT_VAR": "still-set"}


def state_of(sandbox_id: str) -> str:
    return str(Sandbox.get_info(sandbox_id).state.value)


def start_sleeper(sandbox: Sandbox) -> int:
    """A process sleeping inside ``sandbox``; its host pid."""
    marker = f"sleeper-{uuid.uuid4().hex}"
    sandbox.commands.run(f"python -c 'import time; time.sleep(600)' {marker}", background=True, timeout=0)
    pids = wait_for(lambda: host_pids_running(marker), 10, "the sleeper")
    assert isinstance(pids, list) and len(pids) == 1
    return int(pids[0])


@contextlib.contextmanager
def state_folder() -> Iterator[Path]:
    """A state folder of our own, outlasting one sandboxd: under /tmp, reachable by the sandboxes'
    uid (pytest's folders are private), unmounted and removed at the end."""
    folder = Path(tempfile.mkdtemp(prefix="e2bq-fspause-"))
    folder.chmod(0o711)
    try:
        yield folder
    finally:
        unmount_under(folder)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def sandbox(sdk_env: SandboxHostProcess) -> Iterator[Sandbox]:
    sbx = Sandbox.create(timeout=300, envs=ENVS, metadata={"suite": "fspause"})
    try:
        yield sbx
    finally:
        sbx.kill()


def test_filesystem_pause_ends_the_processes_and_keeps_the_files(sandbox: Sandbox) -> None:
    sandbox.files.write("/home/user/kept.txt", "home")
    sandbox.files.write("/tmp/kept.txt", "tmp")
    sandbox.run_code("in_memory = 1")
    sleeper = start_sleeper(sandbox)

    assert sandbox.pause(keep_memory=False) is True
    assert state_of(sandbox.sandbox_id) == "paused"
    assert not Path(f"/proc/{sleeper}").exists()
    assert jail_pids(sandbox.sandbox_id) == [], "a process of the paused sandbox still runs"
    assert sandbox.pause(mode="filesystem") is False  # already paused: 409

    resumed = Sandbox.connect(sandbox.sandbox_id)
    assert resumed.sandbox_id == sandbox.sandbox_id
    assert state_of(sandbox.sandbox_id) == "running"
    assert sandbox.files.read("/home/user/kept.txt") == "home"  # the old object: same token
    assert resumed.files.read("/tmp/kept.txt") == "tmp"
    assert resumed.commands.run("echo $KEPT_VAR").stdout == "still-set\n"
    assert resumed.run_code("in_memory").error is not None, "a fresh kernel has no old variables"
    assert resumed.run_code("1 + 1").text == "2"
    assert Sandbox.get_info(sandbox.sandbox_id).metadata == {"suite": "fspause"}


def test_a_memory_paused_sandbox_is_filesystem_paused_already_paused(sandbox: Sandbox) -> None:
    sandbox.pause()
    assert sandbox.pause(mode="filesystem") is False
    assert Sandbox.connect(sandbox.sandbox_id).commands.run("echo ok").stdout == "ok\n"


def test_connect_with_reboot_cold_boots_from_the_disk(sandbox: Sandbox) -> None:
    sandbox.run_code("in_memory = 1")
    sandbox.files.write("/home/user/kept.txt", "kept")
    sandbox.pause()
    rebooted = Sandbox.connect(sandbox.sandbox_id, on_resume="reboot")
    assert rebooted.files.read("/home/user/kept.txt") == "kept"
    assert rebooted.run_code("in_memory").error is not None


def test_on_timeout_pause_with_mode_filesystem(sdk_env: SandboxHostProcess) -> None:
    sandbox = Sandbox.create(timeout=3, lifecycle={"on_timeout": {"action": "pause", "mode": "filesystem"}})
    try:
        sandbox.files.write("/home/user/kept.txt", "kept")
        wait_for(lambda: state_of(sandbox.sandbox_id) == "paused", 20, "the pause at the timeout")
        wait_for(lambda: jail_pids(sandbox.sandbox_id) == [], 10, "the sandbox's processes to end")
        Sandbox.connect(sandbox.sandbox_id, timeout=60)
        assert sandbox.files.read("/home/user/kept.txt") == "kept"
    finally:
        sandbox.kill()


def test_auto_resume_with_a_filesystem_pause_is_refused(sdk_env: SandboxHostProcess) -> None:
    # the SDK refuses it before sending: a raw request, as another client could send it
    with sdk_env.control() as control:
        answer = control.post(
            "/sandboxes",
            json={
                "templateID": "base",
                "autoPause": True,
                "autoPauseMemory": False,
                "autoResume": {"enabled": True},
            },
        )
    assert answer.status_code == 400
    assert "filesystem" in answer.json()["message"]


def test_the_resume_route_and_auto_resume_start_it_from_disk(sdk_env: SandboxHostProcess) -> None:
    sandbox = Sandbox.create(timeout=120, lifecycle={"on_timeout": "pause", "auto_resume": True})
    try:
        sandbox.files.write("/home/user/kept.txt", "kept")
        sandbox.pause(mode="filesystem")
        with sdk_env.control() as control:
            assert control.post(f"/sandboxes/{sandbox.sandbox_id}/resume", json={}).status_code == 201
            assert control.post(f"/sandboxes/{sandbox.sandbox_id}/resume", json={}).status_code == 409
        # a memory pause moved to disk (past the cap, or at shutdown) is still woken by a request
        sandbox.pause(mode="filesystem")
        assert sandbox.files.read("/home/user/kept.txt") == "kept"
        assert state_of(sandbox.sandbox_id) == "running"
    finally:
        sandbox.kill()


def test_killing_a_filesystem_paused_sandbox_removes_its_disk(sdk_env: SandboxHostProcess) -> None:
    sandbox = Sandbox.create(timeout=60)
    folder = sdk_env.state_dir / sandbox.sandbox_id
    sandbox.pause(keep_memory=False)
    assert (folder / "paused.json").is_file()
    assert sandbox.kill() is True
    assert not folder.exists()
    with pytest.raises(Exception, match="not found"):
        Sandbox.connect(sandbox.sandbox_id)


def test_async_filesystem_pause_list_and_connect(sdk_env: SandboxHostProcess) -> None:
    async def scenario() -> None:
        sandbox = await AsyncSandbox.create(timeout=120, metadata={"suite": uuid.uuid4().hex})
        try:
            await sandbox.files.write("/home/user/a.txt", "async")
            assert await sandbox.pause(mode="filesystem") is True
            assert await AsyncSandbox.pause(sandbox.sandbox_id, keep_memory=False) is False
            info = await AsyncSandbox.get_info(sandbox.sandbox_id)
            assert info.state.value == "paused"
            query = SandboxQuery(metadata=info.metadata, state=[SandboxState.PAUSED])
            listed = await AsyncSandbox.list(query=query).next_items()
            assert [s.sandbox_id for s in listed] == [sandbox.sandbox_id]
            resumed = await AsyncSandbox.connect(sandbox.sandbox_id)
            assert await resumed.files.read("/home/user/a.txt") == "async"
            assert (await resumed.run_code("6 * 7")).text == "42"
        finally:
            await sandbox.kill()

    asyncio.run(scenario())


def test_past_max_paused_the_oldest_memory_pause_moves_to_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with sandbox_host(tmp_path, "--max-paused", "1", "--max-sandboxes", "2") as host:
        for name, value in host.env.items():
            monkeypatch.setenv(name, value)
        first, second = Sandbox.create(timeout=120), Sandbox.create(timeout=120)
        try:
            for sandbox in (first, second):
                sandbox.run_code(f"name = {sandbox.sandbox_id!r}")
                sandbox.files.write("/home/user/name.txt", sandbox.sandbox_id)
            first_sleeper = start_sleeper(first)
            first.pause()
            second.pause()
            wait_for(lambda: not Path(f"/proc/{first_sleeper}").exists(), 10, "the oldest to move to disk")
            assert jail_pids(first.sandbox_id) == []
            assert jail_pids(second.sandbox_id) != [], "the newest pause keeps its memory"
            paused = Sandbox.list(query=SandboxQuery(state=[SandboxState.PAUSED])).next_items()
            assert {s.sandbox_id for s in paused} == {first.sandbox_id, second.sandbox_id}
            # paused sandboxes of both kinds leave room for new ones
            Sandbox.create(timeout=30).kill()
            Sandbox.connect(second.sandbox_id)
            assert second.run_code("name").text == second.sandbox_id
            Sandbox.connect(first.sandbox_id)
            assert first.files.read("/home/user/name.txt") == first.sandbox_id
            assert first.run_code("name").error is not None
        finally:
            first.kill()
            second.kill()


def test_paused_sandboxes_survive_restarts_of_sandboxd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pause → resume → write → pause → restart → resume → write → pause → restart → resume:
    the files of every round are there (a second resume must not lose the first's)."""
    with state_folder() as state:
        args = ("--state-dir", str(state))
        with sandbox_host(tmp_path, *args) as host:
            port = host.port
            for name, value in host.env.items():
                monkeypatch.setenv(name, value)
            sandbox = Sandbox.create(timeout=300, envs=ENVS, metadata={"round": "one"})
            sandbox_id = sandbox.sandbox_id
            sandbox.files.write("/home/user/round1.txt", "one")
            sandbox.pause(keep_memory=False)
            Sandbox.connect(sandbox_id)
            sandbox.files.write("/tmp/round2.txt", "two")
            sandbox.pause()  # with its memory: moved to disk when sandboxd stops
            running = Sandbox.create(timeout=300)  # a running one is not kept
        with sandbox_host(tmp_path, *args, port=port):
            assert state_of(sandbox_id) == "paused"
            assert Sandbox.get_info(sandbox_id).metadata == {"round": "one"}
            with pytest.raises(Exception, match="not found"):
                Sandbox.get_info(running.sandbox_id)
            resumed = Sandbox.connect(sandbox_id)
            assert sandbox.files.read("/home/user/round1.txt") == "one"  # its first token still works
            assert resumed.files.read("/tmp/round2.txt") == "two"
            assert resumed.commands.run("echo $KEPT_VAR").stdout == "still-set\n"
            resumed.files.write("/home/user/round3.txt", "three")
            resumed.pause(keep_memory=False)
        with sandbox_host(tmp_path, *args, port=port):
            resumed = Sandbox.connect(sandbox_id)
            for path, text in (("/home/user/round1.txt", "one"), ("/tmp/round2.txt", "two"),
                               ("/home/user/round3.txt", "three")):
                assert resumed.files.read(path) == text
            assert resumed.run_code("1 + 1").text == "2"
            resumed.kill()
            assert not (state / sandbox_id).exists()


def test_a_kept_sandbox_resumes_through_the_async_sdk_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with state_folder() as state:
        args = ("--state-dir", str(state))
        with sandbox_host(tmp_path, *args) as host:
            port = host.port
            for name, value in host.env.items():
                monkeypatch.setenv(name, value)
            sandbox = Sandbox.create(timeout=300)
            sandbox.files.write("/home/user/kept.txt", "kept")
            sandbox.pause(mode="filesystem")
        with sandbox_host(tmp_path, *args, port=port) as host:

            async def scenario() -> None:
                listed = await AsyncSandbox.list(query=SandboxQuery(state=[SandboxState.PAUSED])).next_items()
                assert sandbox.sandbox_id in [s.sandbox_id for s in listed]
                resumed = await AsyncSandbox.connect(sandbox.sandbox_id)
                assert await resumed.files.read("/home/user/kept.txt") == "kept"
                await resumed.kill()

            asyncio.run(scenario())
            assert httpx.get(f"{host.url}/health").json()["sandboxes"] == 0


def test_a_filesystem_paused_sandbox_survives_sandboxd_being_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with state_folder() as state:
        args = ("--state-dir", str(state))
        with sandbox_host(tmp_path, *args) as host:
            port = host.port
            for name, value in host.env.items():
                monkeypatch.setenv(name, value)
            sandbox = Sandbox.create(timeout=300)
            sandbox.files.write("/home/user/kept.txt", "kept")
            sandbox.pause(mode="filesystem")
            host.proc.kill()  # SIGKILL: no shutdown of its own
            host.proc.wait(timeout=30)
        with sandbox_host(tmp_path, *args, port=port):
            resumed = Sandbox.connect(sandbox.sandbox_id)
            assert resumed.files.read("/home/user/kept.txt") == "kept"
            resumed.kill()
