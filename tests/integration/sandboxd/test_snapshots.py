"""Snapshots and fork, as E2B's SDK drives them (sync and async).

A snapshot keeps a sandbox's home and /tmp as a read-only layer; a sandbox created from it (by id
or name) starts on those files with fresh processes. A fork copies a running sandbox's files once
and starts each fork on them. Every sandbox writes to its own disk: a fork's write never reaches
its parent, its snapshot or a sibling.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2b import (
    CommandExitException,
    InvalidArgumentException,
    SandboxException,
    SandboxNotFoundException,
)
from e2b_code_interpreter import AsyncSandbox, Sandbox

from e2bq.launch.sandboxd import start_sandboxd
from tests.integration.sandboxd.test_leftovers import loops_under, mounts_under
from tests.procs import API_KEY, SandboxHostProcess, unmount_under


@pytest.fixture
def sandbox(sdk_env: SandboxHostProcess) -> Iterator[Sandbox]:
    sbx = Sandbox.create(timeout=300)
    try:
        yield sbx
    finally:
        sbx.kill()


def _kill_all(items: list[Sandbox | Exception]) -> None:
    for item in items:
        if isinstance(item, Sandbox):
            item.kill()


def test_a_sandbox_from_a_snapshot_has_its_files_and_fresh_processes(sandbox: Sandbox) -> None:
    sandbox.files.write("/home/user/notes.txt", "kept")
    sandbox.commands.run("mkdir -p /tmp/work && echo scratch > /tmp/work/a")
    sandbox.commands.run("sleep 600", background=True, timeout=0)
    sandbox.run_code("in_memory = 42")
    # the agent's kernel files (connection file, sockets) are its processes', not its files
    parent_kernel_files = sandbox.commands.run("ls /tmp/e2bq-kernels | grep kernel-").stdout.split()
    assert parent_kernel_files

    info = sandbox.create_snapshot(name="with-notes")
    assert info.snapshot_id and info.names == ["with-notes"]

    for template in (info.snapshot_id, "with-notes"):
        copy = Sandbox.create(template=template, timeout=120)
        try:
            assert copy.files.read("/home/user/notes.txt") == "kept"
            assert copy.files.read("/tmp/work/a") == "scratch\n"
            assert "sleep 600" not in copy.commands.run("ps -eo args").stdout
            kernel_files = copy.commands.run("ls /tmp/e2bq-kernels || true").stdout
            assert not any(name in kernel_files for name in parent_kernel_files)
            assert copy.run_code("in_memory").error is not None  # a fresh kernel
            copy.files.write("/home/user/notes.txt", "changed in the copy")
            assert Sandbox.get_info(copy.sandbox_id).template_id == info.snapshot_id
        finally:
            copy.kill()
    assert sandbox.files.read("/home/user/notes.txt") == "kept"
    assert sandbox.run_code("in_memory").text == "42"  # the source ran on, untouched
    Sandbox.delete_snapshot(info.snapshot_id)


def test_list_and_delete_snapshots_with_pages_and_filters(
    sandbox: Sandbox, sdk_env: SandboxHostProcess
) -> None:
    made = [sandbox.create_snapshot(name=f"page-{i}") for i in range(3)]
    ids = {s.snapshot_id for s in made}

    mine = sandbox.list_snapshots(limit=2)
    first = mine.next_items()
    assert len(first) == 2 and mine.has_next
    second = mine.next_items()
    assert {s.snapshot_id for s in first + second} == ids and not mine.has_next

    for name in ("page-1", "my-team/page-1:default", made[1].snapshot_id):
        named = Sandbox.list_snapshots(name=name).next_items()
        assert [s.names for s in named] == [["page-1"]], name

    assert Sandbox.delete_snapshot(made[0].snapshot_id) is True
    assert Sandbox.delete_snapshot(made[0].snapshot_id) is False  # 404: gone already
    assert made[0].snapshot_id not in {s.snapshot_id for s in Sandbox.list_snapshots().next_items()}
    with pytest.raises(SandboxException, match=r"404: template .* not found"):
        Sandbox.create(template=made[0].snapshot_id)
    for snapshot in made[1:]:
        assert Sandbox.delete_snapshot(snapshot.snapshot_id)

    answer = httpx.get(sdk_env.url + "/snapshots", params={"limit": 0}, headers={"X-API-KEY": API_KEY})
    assert answer.status_code == 400


def test_a_name_used_again_points_to_the_new_files(sandbox: Sandbox) -> None:
    sandbox.files.write("/home/user/v", "1")
    first = sandbox.create_snapshot(name="versioned")
    sandbox.files.write("/home/user/v", "2")
    second = sandbox.create_snapshot(name="versioned")
    assert second.snapshot_id == first.snapshot_id
    copy = Sandbox.create(template="versioned", timeout=60)
    try:
        assert copy.files.read("/home/user/v") == "2"
    finally:
        copy.kill()
        Sandbox.delete_snapshot(first.snapshot_id)


def test_deleting_a_snapshot_leaves_the_sandboxes_made_from_it_working(sandbox: Sandbox) -> None:
    sandbox.files.write("/home/user/data.bin", b"x" * 1_000_000)
    info = sandbox.create_snapshot()
    copy = Sandbox.create(template=info.snapshot_id, timeout=60)
    try:
        assert Sandbox.delete_snapshot(info.snapshot_id)
        assert len(copy.files.read("/home/user/data.bin", format="bytes")) == 1_000_000
        copy.files.write("/home/user/new", "still writable")
        assert copy.commands.run("cat /home/user/new").stdout == "still writable"
    finally:
        copy.kill()


def test_fork_copies_the_files_and_writes_stay_apart(sandbox: Sandbox) -> None:
    sandbox.files.write("/home/user/shared.txt", "parent")
    sandbox.run_code("in_memory = 1")
    forks = sandbox.fork(count=3, timeout=120)
    try:
        assert all(isinstance(f, Sandbox) for f in forks), forks
        children = [f for f in forks if isinstance(f, Sandbox)]
        assert len({c.sandbox_id for c in children} | {sandbox.sandbox_id}) == 4
        for i, child in enumerate(children):
            assert child.files.read("/home/user/shared.txt") == "parent"
            assert child.run_code("in_memory").error is not None
            child.files.write("/home/user/shared.txt", f"fork {i}")
            child.commands.run(f"echo {i} > /tmp/mine")
        for i, child in enumerate(children):
            assert child.files.read("/home/user/shared.txt") == f"fork {i}"
            assert child.commands.run("cat /tmp/mine").stdout == f"{i}\n"
        assert sandbox.files.read("/home/user/shared.txt") == "parent"
        assert sandbox.run_code("in_memory").text == "1"
        assert not sandbox.files.exists("/tmp/mine")
    finally:
        _kill_all(forks)


def test_a_fork_count_out_of_range_or_an_unknown_sandbox_is_refused(
    sandbox: Sandbox, sdk_env: SandboxHostProcess
) -> None:
    with pytest.raises(InvalidArgumentException):  # the SDK's own check, before any request
        sandbox.fork(count=0)
    with pytest.raises(SandboxNotFoundException):
        Sandbox.fork("inotasandbox", count=1)
    with pytest.raises(SandboxNotFoundException):
        Sandbox.create_snapshot("inotasandbox")
    for count in (0, 101, "3", True):
        answer = httpx.post(
            f"{sdk_env.url}/sandboxes/{sandbox.sandbox_id}/fork",
            json={"count": count},
            headers={"X-API-KEY": API_KEY},
        )
        assert answer.status_code == 400, (count, answer.text)


def test_a_fork_that_cannot_start_is_returned_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = Path(tempfile.mkdtemp(prefix="e2bq-forkcap-"))
    with start_sandboxd(tmp_path, "--max-sandboxes", "2", api_key=API_KEY, state_dir=state) as host:
        for name, value in host.env.items():
            monkeypatch.setenv(name, value)
        parent = Sandbox.create(timeout=60)
        try:
            forks = parent.fork(count=3, timeout=60)
            started = [f for f in forks if isinstance(f, Sandbox)]
            failed = [f for f in forks if isinstance(f, Exception)]
            assert len(started) == 1 and len(failed) == 2, forks
            assert all(isinstance(f, SandboxException) for f in failed)
            _kill_all(forks)
        finally:
            parent.kill()
    shutil.rmtree(state, ignore_errors=True)


def test_snapshots_survive_a_restart_and_the_cap_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = Path(tempfile.mkdtemp(prefix="e2bq-snapstate-"))
    env = {"E2BQ_SANDBOXD_MAX_SNAPSHOTS": "1"}
    with start_sandboxd(tmp_path, api_key=API_KEY, state_dir=state, env=env) as host:
        for name, value in host.env.items():
            monkeypatch.setenv(name, value)
        source = Sandbox.create(timeout=60)
        source.files.write("/home/user/durable.txt", "survives")
        info = source.create_snapshot(name="durable")
        with pytest.raises(SandboxException) as refused:
            source.create_snapshot(name="one-too-many")
        assert getattr(refused.value, "status_code", None) == 400
        assert "E2BQ_SANDBOXD_MAX_SNAPSHOTS" in str(refused.value)
        port = host.port
    with start_sandboxd(tmp_path, api_key=API_KEY, state_dir=state, env=env, port=port) as host:
        assert [s.snapshot_id for s in Sandbox.list_snapshots().next_items()] == [info.snapshot_id]
        copy = Sandbox.create(template="durable", timeout=60)
        try:
            assert copy.files.read("/home/user/durable.txt") == "survives"
        finally:
            copy.kill()
        assert Sandbox.delete_snapshot("durable")
    try:
        assert not any((state / "layers").iterdir())
    finally:
        shutil.rmtree(state, ignore_errors=True)


def test_async_snapshot_and_fork(sdk_env: SandboxHostProcess) -> None:
    async def scenario() -> None:
        parent = await AsyncSandbox.create(timeout=120)
        try:
            await parent.files.write("/home/user/a.txt", "async")
            info = await parent.create_snapshot(name="async-snap")
            listed = await AsyncSandbox.list_snapshots(sandbox_id=parent.sandbox_id).next_items()
            assert [s.snapshot_id for s in listed] == [info.snapshot_id]
            copy = await AsyncSandbox.create(template=info.snapshot_id, timeout=60)
            assert await copy.files.read("/home/user/a.txt") == "async"
            await copy.kill()
            forks = await parent.fork(count=2)
            for child in forks:
                assert isinstance(child, AsyncSandbox), child
                assert await child.files.read("/home/user/a.txt") == "async"
                await child.kill()
            assert await AsyncSandbox.delete_snapshot(info.snapshot_id)
        finally:
            await parent.kill()

    asyncio.run(scenario())


def test_a_killed_host_leaves_no_overlay_and_its_fork_layers_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = Path(tempfile.mkdtemp(prefix="e2bq-snapkill-"))
    try:
        with start_sandboxd(tmp_path, api_key=API_KEY, state_dir=state) as host:
            for name, value in host.env.items():
                monkeypatch.setenv(name, value)
            parent = Sandbox.create(timeout=120)
            parent.files.write("/home/user/f", "x")
            snapshot = parent.create_snapshot(name="after-kill")
            [child] = parent.fork(count=1)
            assert isinstance(child, Sandbox), child
            from_snapshot = Sandbox.create(template="after-kill", timeout=120)
            assert from_snapshot.files.read("/home/user/f") == "x"
            host.proc.send_signal(signal.SIGKILL)
            host.proc.wait(timeout=30)
            assert len(mounts_under(state)) >= 5  # 3 images and 2 overlays stay mounted
            # (inside: stopping a host unmounts what is under its state folder, as tests clean up)
            with start_sandboxd(tmp_path / "other", api_key=API_KEY):  # another state folder
                assert mounts_under(state) == [] and loops_under(state) == []
        with start_sandboxd(tmp_path, api_key=API_KEY, state_dir=state) as host:
            for name, value in host.env.items():
                monkeypatch.setenv(name, value)
            assert [p.name for p in (state / "layers").iterdir()] == [
                r["layer"] for r in json.loads((state / "snapshots" / "snapshots.json").read_text())
            ]
            copy = Sandbox.create(template=snapshot.snapshot_id, timeout=60)
            assert copy.files.read("/home/user/f") == "x"
            copy.kill()
    finally:
        unmount_under(state)
        shutil.rmtree(state, ignore_errors=True)


def test_a_sandbox_from_a_snapshot_counts_only_its_own_writes_against_its_disk(sandbox: Sandbox) -> None:
    sandbox.commands.run("head -c 80M /dev/urandom > /home/user/big")
    info = sandbox.create_snapshot()
    copy = Sandbox.create(template=info.snapshot_id, metadata={"e2bq.disk_mb": "64"}, timeout=60)
    try:
        # the 80 MB below sit in the shared layer, not on its 64 MB disk
        assert copy.commands.run("stat -c %s /home/user/big").stdout.strip() == str(80 << 20)
        copy.commands.run("head -c 10M /dev/urandom > /home/user/small")
        with pytest.raises(CommandExitException, match="No space left on device"):
            copy.commands.run("head -c 100M /dev/zero > /home/user/fill")
        assert not sandbox.files.exists("/home/user/small")
    finally:
        copy.kill()
        Sandbox.delete_snapshot(info.snapshot_id)
