"""E2B's volumes as the SDK drives them (sync and async): named volumes on the host, read and
written through the volume content API, mounted into sandboxes at create, outliving them, kept
across a restart of sandboxd, each within its size.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2b import (
    AsyncVolume,
    AuthenticationException,
    SandboxException,
    Volume,
    VolumeException,
    VolumeNotFoundException,
    VolumePathNotFoundException,
)
from e2b.volume.types import VolumeFileType
from e2b_code_interpreter import AsyncSandbox, Sandbox

from e2bq.launch import start_sandboxd
from tests.procs import API_KEY, SandboxHostProcess, free_port, sandbox_host, unmount_under, wait_for
from tests.security.harness import run


def unique(prefix: str = "vol") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def volume(sdk_env: SandboxHostProcess) -> Iterator[Volume]:
    vol = Volume.create(unique())
    try:
        yield vol
    finally:
        Volume.destroy(vol.volume_id)


def test_create_connect_list_info_destroy(sdk_env: SandboxHostProcess) -> None:
    name = unique()
    vol = Volume.create(name)
    assert vol.name == name and vol.volume_id and vol.token
    assert (vol.volume_id, name) in {(v.volume_id, v.name) for v in Volume.list()}
    info = Volume.get_info(vol.volume_id)
    assert (info.volume_id, info.name, info.token) == (vol.volume_id, name, vol.token)
    again = Volume.connect(vol.volume_id)
    assert again.name == name and again.token == vol.token
    with pytest.raises(VolumeException, match="exists already"):
        Volume.create(name)
    assert Volume.destroy(vol.volume_id) is True
    assert Volume.destroy(vol.volume_id) is False
    assert vol.volume_id not in {v.volume_id for v in Volume.list()}
    with pytest.raises(VolumeNotFoundException):
        Volume.get_info(vol.volume_id)


def test_content_api_round_trip(volume: Volume) -> None:
    stat = volume.write_file("/notes/a.txt", "hello volume")
    assert (stat.name, stat.type, stat.path, stat.size) == ("a.txt", VolumeFileType.FILE, "/notes/a.txt", 12)
    assert volume.read_file("/notes/a.txt") == "hello volume"
    assert volume.read_file("notes/a.txt", format="bytes") == b"hello volume"
    assert b"".join(volume.read_file("/notes/a.txt", format="stream")) == b"hello volume"
    made = volume.make_dir("/notes/deep/er", force=True)
    assert made.type == VolumeFileType.DIRECTORY
    with pytest.raises(VolumeException, match="409"):
        volume.make_dir("/notes/deep")
    assert [e.name for e in volume.list("/notes")] == ["a.txt", "deep"]
    every = {e.path for e in volume.list("/", depth=3)}
    assert every == {"/notes", "/notes/a.txt", "/notes/deep", "/notes/deep/er"}
    assert volume.exists("/notes/a.txt") and not volume.exists("/nope")
    assert volume.get_info("/notes").type == VolumeFileType.DIRECTORY
    changed = volume.update_metadata("/notes/a.txt", mode=0o600, uid=1234, gid=4321)
    assert (changed.mode, changed.uid, changed.gid) == (0o600, 1234, 4321)
    volume.write_file("/notes/a.txt", b"\x00\x01 replaced")
    assert volume.read_file("/notes/a.txt", format="bytes") == b"\x00\x01 replaced"
    volume.remove("/notes")
    assert not volume.exists("/notes")
    for missing in (lambda: volume.read_file("/gone"), lambda: volume.remove("/gone"),
                    lambda: volume.list("/gone"), lambda: volume.get_info("/gone")):
        with pytest.raises(VolumePathNotFoundException):
            missing()


def test_content_needs_the_volumes_own_token(volume: Volume, sdk_env: SandboxHostProcess) -> None:
    other = Volume.create(unique())
    try:
        with pytest.raises(AuthenticationException):
            volume.read_file("/x", token=other.token)
        with pytest.raises(AuthenticationException):
            Volume(volume.volume_id, volume.name, token="not-the-token").list("/")
    finally:
        Volume.destroy(other.volume_id)


def test_two_sandboxes_share_a_volume_that_outlives_them(volume: Volume) -> None:
    volume.write_file("/from-api.txt", "written through the API")
    first = Sandbox.create(volume_mounts={"/mnt/data": volume}, timeout=300)
    second = Sandbox.create(volume_mounts={"/home/user/shared": volume.name}, timeout=300)
    try:
        assert first.files.read("/mnt/data/from-api.txt") == "written through the API"
        first.files.write("/mnt/data/from-first.txt", "one\n")
        assert second.files.read("/home/user/shared/from-first.txt") == "one\n"
        # the other sandbox (another host uid) may change what the first made
        changed = run(second, "echo two >> /home/user/shared/from-first.txt && mkdir /home/user/shared/d")
        assert changed.exit_code == 0, changed.stderr
        assert first.files.read("/mnt/data/from-first.txt") == "one\ntwo\n"
        assert run(first, "echo three > /mnt/data/d/f && echo more >> /mnt/data/from-api.txt").exit_code == 0
        assert volume.read_file("/d/f") == "three\n"
        assert {"name": volume.name, "path": "/mnt/data"} in first.get_info().volume_mounts
        with pytest.raises(VolumeException, match="409"):
            Volume.destroy(volume.volume_id)
    finally:
        first.kill()
        second.kill()
    assert volume.read_file("/from-first.txt") == "one\ntwo\n"
    third = Sandbox.create(volume_mounts={"/data": volume}, timeout=300)
    try:
        assert third.files.read("/data/d/f") == "three\n"
    finally:
        third.kill()


@pytest.mark.parametrize(
    "path",
    [
        *("relative/dir", "/", "/proc/x", "/dev", "/run/e2bq", "/opt/e2bq/lib", "/mnt/../etc"),
        *("/usr/local/x", "/home/user", "/tmp", "/mnt/data/", "//mnt"),
    ],
)
def test_bad_mount_paths_are_refused(volume: Volume, path: str) -> None:
    with pytest.raises(SandboxException, match="400"):
        Sandbox.create(volume_mounts={path: volume}, timeout=60)


def test_an_unknown_volume_name_is_refused(sdk_env: SandboxHostProcess) -> None:
    with pytest.raises(SandboxException, match="does not exist"):
        Sandbox.create(volume_mounts={"/mnt/data": unique("missing")}, timeout=60)


def test_async_sdk(sdk_env: SandboxHostProcess) -> None:
    async def scenario() -> None:
        vol = await AsyncVolume.create(unique())
        try:
            await vol.write_file("/a/b.txt", "async")
            assert await vol.read_file("/a/b.txt") == "async"
            assert [e.name for e in await vol.list("/a")] == ["b.txt"]
            sbx = await AsyncSandbox.create(volume_mounts={"/mnt/v": vol}, timeout=300)
            try:
                assert await sbx.files.read("/mnt/v/a/b.txt") == "async"
                await sbx.files.write("/mnt/v/c.txt", "from the sandbox")
            finally:
                await sbx.kill()
            assert await vol.read_file("/c.txt") == "from the sandbox"
            assert (await AsyncVolume.get_info(vol.volume_id)).name == vol.name
            assert vol.volume_id in {v.volume_id for v in await AsyncVolume.list()}
        finally:
            assert await AsyncVolume.destroy(vol.volume_id) is True

    asyncio.run(scenario())


def test_size_limit_and_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 16 MiB volume: full inside (ENOSPC) and through the API (507); after a restart of
    sandboxd on the same state folder the volume, its name, token and content are all there."""
    # not under pytest's private folder: the sandboxes' uid must reach it
    state = Path(tempfile.mkdtemp(prefix="e2bq-volumes-test-"))
    try:
        _size_limit_and_restart(tmp_path, state, monkeypatch)
    finally:
        unmount_under(state)
        shutil.rmtree(state, ignore_errors=True)


def _size_limit_and_restart(tmp_path: Path, state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    env = {"E2BQ_SANDBOXD_VOLUME_MB": "16"}
    with start_sandboxd(tmp_path, port=port, api_key=API_KEY, state_dir=state, env=env) as host:
        for name, value in host.env.items():
            monkeypatch.setenv(name, value)
        vol = Volume.create(unique())
        vol.write_file("/kept.txt", "survives")
        sbx = Sandbox.create(volume_mounts={"/mnt/small": vol}, timeout=300)
        try:
            full = run(sbx, "head -c 32M /dev/zero > /mnt/small/big; echo $?")
            assert "No space left on device" in full.stderr
            run(sbx, "rm -f /mnt/small/big")
        finally:
            sbx.kill()
        with pytest.raises(VolumeException, match="507"):
            vol.write_file("/big.bin", b"\0" * (32 * 1024 * 1024))
        assert not vol.exists("/big.bin")  # no half file is left
    with start_sandboxd(tmp_path, port=port, api_key=API_KEY, state_dir=state, env=env, name="again"):
        again = Volume.connect(vol.volume_id)
        assert (again.name, again.token) == (vol.name, vol.token)
        assert again.read_file("/kept.txt") == "survives"
        wait_for(lambda: Volume.destroy(vol.volume_id), 30, "the volume's destroy")


def test_a_create_with_mounts_skips_the_warm_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pooled jail was built without the volume's bind: a create that mounts one launches its own."""
    with sandbox_host(tmp_path, "--warm-pool", "1") as host:
        for name, value in host.env.items():
            monkeypatch.setenv(name, value)
        metrics = host.url + "/metrics"
        wait_for(lambda: "e2bq_sandboxd_pool_ready 1.0" in httpx.get(metrics).text, 60, "a pooled sandbox")
        vol = Volume.create(unique())
        vol.write_file("/here.txt", "mounted")
        sbx = Sandbox.create(volume_mounts={"/mnt/v": vol}, timeout=120)
        try:
            assert sbx.files.read("/mnt/v/here.txt") == "mounted"
        finally:
            sbx.kill()
        Volume.destroy(vol.volume_id)


def test_a_paused_sandbox_holds_its_volume(volume: Volume) -> None:
    sbx = Sandbox.create(volume_mounts={"/mnt/v": volume}, timeout=300)
    try:
        sbx.files.write("/mnt/v/before-pause.txt", "kept")
        assert sbx.pause()
        with pytest.raises(VolumeException, match="409"):
            Volume.destroy(volume.volume_id)
        assert volume.read_file("/before-pause.txt") == "kept"  # the content API still serves it
        Sandbox.connect(sbx.sandbox_id)
        assert sbx.files.read("/mnt/v/before-pause.txt") == "kept"
    finally:
        sbx.kill()
    token = volume.token
    assert Volume.destroy(volume.volume_id) is True
    with pytest.raises(VolumePathNotFoundException):  # 404: its token opens nothing any more
        Volume(volume.volume_id, volume.name, token=token).list("/")
