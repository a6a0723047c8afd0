"""A sandbox resumed from a filesystem pause gets back what its jail was made with besides its disk:
its volumes bound at the same paths, and its outbound rules in its new network namespace, also
after a restart of sandboxd."""

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
