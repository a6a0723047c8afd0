"""A volume cannot reach outside itself.

A volume's content is written by sandboxes and read and changed by sandboxd (as root, on the host)
through the volume content API. Whatever a sandbox puts in a volume — symlinks to host paths or
up the tree, FIFOs, hard links — the API never follows it out, and ``..`` never leaves the volume.
A sandbox that mounts a volume sees only that volume's content, not its record (which holds the
volume's token) nor other volumes, and stays as confined as any sandbox.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2b import Volume, VolumeException
from e2b.volume.types import VolumeFileType
from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess
from tests.security.harness import create_sandbox, kill_quietly, run
from tests.security.probes import sha256_of

UP = "../" * 16


@pytest.fixture
def volume(host: SandboxHostProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[Volume]:
    monkeypatch.setenv("E2B_VOLUME_API_URL", host.url)
    vol = Volume.create(f"attack-{uuid.uuid4().hex[:8]}", api_key=host.api_key, api_url=host.url)
    try:
        yield vol
    finally:
        Volume.destroy(vol.volume_id, api_key=host.api_key, api_url=host.url)


@pytest.fixture
def mounted(host: SandboxHostProcess, volume: Volume) -> Iterator[Sandbox]:
    sandbox = create_sandbox(host, volume_mounts={"/mnt/v": volume})
    try:
        yield sandbox
    finally:
        kill_quietly(sandbox)


def test_symlinks_a_sandbox_plants_are_never_followed(mounted: Sandbox, volume: Volume, canary: Path) -> None:
    before, mode = sha256_of(canary), canary.stat().st_mode
    planted = run(
        mounted,
        f"cd /mnt/v && ln -s {canary} canary && ln -s / root && ln -s {UP} up && ln -s /etc/shadow shadow"
        " && mkdir real && ln -s ../root real/back",
    )
    assert planted.exit_code == 0, planted.stderr
    for path in ("/canary", "/shadow", "/root/etc/shadow", "/up/etc/shadow", "/real/back/etc/passwd"):
        with pytest.raises(VolumeException, match="400"):
            volume.read_file(path)
    for path in ("/canary", "/root/tmp/e2bq-volume-escape", "/up/tmp/e2bq-volume-escape"):
        with pytest.raises(VolumeException, match="400"):
            volume.write_file(path, "overwritten")
    with pytest.raises(VolumeException, match="400"):
        volume.update_metadata("/canary", mode=0o777)
    with pytest.raises(VolumeException, match="400"):
        volume.list("/root")
    with pytest.raises(VolumeException, match="400"):
        volume.make_dir("/up/tmp/e2bq-volume-escape-dir", force=True)
    info = volume.get_info("/canary")
    assert (info.type, info.target) == (VolumeFileType.SYMLINK, str(canary))  # reported, not followed
    volume.remove("/root")  # the link goes, not what it names
    volume.remove("/canary")
    assert (sha256_of(canary), canary.stat().st_mode) == (before, mode)
    assert not Path("/tmp/e2bq-volume-escape").exists()
    assert not Path("/tmp/e2bq-volume-escape-dir").exists()
    assert Path("/etc/passwd").exists()


@pytest.mark.parametrize("path", ["/../volume.json", "../volume.json", "/a/../../volume.json", "/.."])
def test_dot_dot_is_refused(volume: Volume, path: str) -> None:
    with pytest.raises(VolumeException, match="400"):
        volume.read_file(path)
    with pytest.raises(VolumeException, match="400"):
        volume.write_file(path, "x")


def test_fifos_and_devices_are_not_opened(mounted: Sandbox, volume: Volume) -> None:
    assert run(mounted, "mkfifo /mnt/v/fifo").exit_code == 0
    with pytest.raises(VolumeException, match="400"):  # at once: a FIFO would block the host
        volume.read_file("/fifo", request_timeout=20)
    with pytest.raises(VolumeException, match="400"):
        volume.write_file("/fifo", "x", request_timeout=20)


def test_no_setuid_through_the_api(volume: Volume) -> None:
    with pytest.raises(VolumeException, match="400"):
        volume.write_file("/suid", "#!/bin/sh\n", mode=0o4755)
    volume.write_file("/plain", "x")
    with pytest.raises(VolumeException, match="400"):
        volume.update_metadata("/plain", mode=0o6777)


def test_a_sandbox_sees_only_the_volume_content(
    host: SandboxHostProcess, mounted: Sandbox, volume: Volume
) -> None:
    volume.write_file("/visible.txt", "yes")
    shown = run(mounted, "ls -a /mnt/v; ls -a /mnt; cat /mnt/v/../volume.json; ls /mnt/v/..")
    assert "visible.txt" in shown.stdout
    assert "volume.json" not in shown.stdout and volume.token not in shown.stdout
    # the host folder of volumes (records, images, other volumes) is nowhere in the jail: the
    # volume's own image is bound from its root
    mounts = run(mounted, "cat /proc/self/mountinfo").stdout
    if os.geteuid() == 0:
        assert str(host.state_dir / "volumes") not in mounts
    grep = run(mounted, f"grep -rs {volume.token} /mnt /home /tmp /run /opt 2>/dev/null | head -1")
    assert volume.token not in grep.stdout
    # hard links cannot pull a file of the jail's system into the volume (another filesystem)
    if os.geteuid() == 0:
        assert run(mounted, "ln /etc/passwd /mnt/v/passwd").exit_code != 0


def test_a_mounting_sandbox_stays_unprivileged(mounted: Sandbox) -> None:
    status = run(mounted, "grep -E '^(Uid|CapEff|CapBnd|NoNewPrivs)' /proc/self/status").stdout
    assert "CapEff:\t0000000000000000" in status and "CapBnd:\t0000000000000000" in status
    assert "NoNewPrivs:\t1" in status
    assert run(mounted, "touch /mnt/v/ok && id -u").stdout.strip() == "1000"
    # nosuid: a set-uid file in the volume gives nothing
    mount_line = run(mounted, "grep ' /mnt/v ' /proc/self/mountinfo").stdout
    assert "nosuid" in mount_line and "nodev" in mount_line
