"""What a sandbox is made with besides its files — its volumes at their paths, its outbound rules,
the layers its disk lies on — is kept when it is resumed from a filesystem pause (also after a
restart of sandboxd), and a fork is made with its source's."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest
from e2b import Volume
from e2b_code_interpreter import Sandbox

from tests.integration.sandboxd.test_fspause import state_folder
from tests.integration.sandboxd.test_network_rules import REGISTRY, reach
from tests.procs import SandboxHostProcess, sandbox_host

DENIED = "ConnectionRefusedError"


def _registry_reachable(sandbox: Sandbox) -> None:
    """The control: without rules the registry connects here (else nothing can be shown)."""
    try:
        socket.getaddrinfo(REGISTRY, 443)
    except OSError:
        pytest.skip(f"{REGISTRY} does not resolve on this machine")
    if reach(sandbox, REGISTRY)[REGISTRY] != "connected":
        pytest.skip(f"{REGISTRY} is not reachable from a sandbox with internet on this machine")


def _made(volume: Volume) -> Sandbox:
    sandbox = Sandbox.create(
        timeout=300, volume_mounts={"/mnt/data": volume}, network={"deny_out": [REGISTRY]}
    )
    sandbox.files.write("/mnt/data/before.txt", "written before the pause")
    assert reach(sandbox, REGISTRY)[REGISTRY] != "connected"
    return sandbox


def _as_it_was(sandbox_id: str) -> None:
    resumed = Sandbox.connect(sandbox_id)
    assert resumed.files.read("/mnt/data/before.txt") == "written before the pause"
    resumed.files.write("/mnt/data/after.txt", "and after")
    assert reach(resumed, REGISTRY)[REGISTRY] != "connected"
    info = Sandbox.get_info(sandbox_id)
    assert info.network is not None and REGISTRY in str(info.network)


def test_a_resume_from_disk_binds_the_volumes_and_sets_the_rules_again(sdk_env: SandboxHostProcess) -> None:
    control = Sandbox.create(timeout=120)
    volume = Volume.create(f"kept-{uuid.uuid4().hex[:8]}")
    try:
        _registry_reachable(control)
        sandbox = _made(volume)
        try:
            sandbox.pause(keep_memory=False)
            _as_it_was(sandbox.sandbox_id)
        finally:
            sandbox.kill()
        assert volume.read_file("after.txt") == "and after"
    finally:
        control.kill()
        Volume.destroy(volume.volume_id)


def test_after_a_restart_of_sandboxd_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with state_folder() as state:
        args = ("--state-dir", str(state))
        with sandbox_host(tmp_path, *args) as host:
            port = host.port
            for name, value in host.env.items():
                monkeypatch.setenv(name, value)
            control = Sandbox.create(timeout=120)
            _registry_reachable(control)
            volume = Volume.create("kept-across-restarts")
            sandbox = _made(volume)
            sandbox.pause(keep_memory=False)
        with sandbox_host(tmp_path, *args, port=port):
            _as_it_was(sandbox.sandbox_id)
            Sandbox.kill(sandbox.sandbox_id)
            Volume.destroy(volume.volume_id)


def test_a_fork_keeps_its_sources_rules_and_volumes(sdk_env: SandboxHostProcess) -> None:
    control = Sandbox.create(timeout=120)
    volume = Volume.create(f"forked-{uuid.uuid4().hex[:8]}")
    try:
        _registry_reachable(control)
        source = _made(volume)
        try:
            [fork] = source.fork(1)
            try:
                assert fork.files.read("/mnt/data/before.txt") == "written before the pause"
                assert reach(fork, REGISTRY)[REGISTRY] != "connected"  # never looser than its source
            finally:
                fork.kill()
        finally:
            source.kill()
    finally:
        control.kill()
        Volume.destroy(volume.volume_id)


def test_a_sandbox_made_from_a_snapshot_pauses_to_disk_and_resumes_on_its_layers(
    sdk_env: SandboxHostProcess,
) -> None:
    source = Sandbox.create(timeout=120)
    source.files.write("/home/user/from-snapshot.txt", "layer")
    snapshot = source.create_snapshot()
    made = Sandbox.create(template=snapshot.snapshot_id, timeout=120)
    try:
        made.files.write("/home/user/own.txt", "own")
        made.pause(keep_memory=False)
        with pytest.raises(Exception, match="paused to disk"):
            made.create_snapshot()
        resumed = Sandbox.connect(made.sandbox_id)
        assert resumed.files.read("/home/user/from-snapshot.txt") == "layer"
        assert resumed.files.read("/home/user/own.txt") == "own"
        assert resumed.run_code("1 + 1").text == "2"
    finally:
        made.kill()
        source.kill()
        Sandbox.delete_snapshot(snapshot.snapshot_id)
