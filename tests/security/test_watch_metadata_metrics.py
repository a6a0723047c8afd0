"""Watches, file metadata and metrics stay inside their sandbox: a watch of the whole jail sees
nothing of the host or of a neighbour, watchers are capped, metadata written through a link to a
host path touches nothing of the host, and metrics answer only with the host's key."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from e2b import SandboxException
from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess
from tests.security.harness import assert_host_and_neighbour_answer, run
from tests.security.probes import sha256_of


def test_a_watch_of_the_whole_jail_sees_nothing_outside_it(
    make_sandbox: Callable[..., Sandbox], neighbour: Sandbox, canary: Path, host: SandboxHostProcess
) -> None:
    sandbox = make_sandbox()
    handle = sandbox.files.watch_dir("/tmp", recursive=True)
    neighbour.files.write("/tmp/neighbour.txt", "theirs")
    canary.with_name(canary.name + ".host").write_text("host side")
    try:
        sandbox.files.write("/tmp/mine.txt", "mine")
        names = {event.name for event in handle.get_new_events()}
    finally:
        canary.with_name(canary.name + ".host").unlink()
        handle.stop()
    assert "mine.txt" in names
    # only the jail's own /tmp (its agent's kernel files live there too), nothing of the others
    assert not [name for name in names if "neighbour" in name or canary.name in name]
    assert_host_and_neighbour_answer(host, neighbour)


def test_watchers_are_capped_per_sandbox(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox()
    handles = [sandbox.files.watch_dir("/home/user", recursive=True) for _ in range(64)]
    with pytest.raises(SandboxException, match="at most 64 watchers"):
        sandbox.files.watch_dir("/home/user")
    for handle in handles:
        handle.stop()
    sandbox.files.watch_dir("/home/user").stop()  # stopping one frees its place


def test_metadata_through_a_link_to_a_host_path_touches_nothing_of_the_host(
    make_sandbox: Callable[..., Sandbox], canary: Path
) -> None:
    sandbox = make_sandbox()
    before = sha256_of(canary)
    run(sandbox, f"ln -s {canary} /home/user/link")
    written = sandbox.files.write("/home/user/link", "pwned", metadata={"owned": "yes"})
    assert written.metadata == {"owned": "yes"}  # on the jail's own file of that name
    assert sha256_of(canary) == before
    assert [name for name in os.listxattr(canary) if name.startswith("user.")] == []


def test_metrics_need_the_hosts_key(make_sandbox: Callable[..., Sandbox], host: SandboxHostProcess) -> None:
    sandbox = make_sandbox()
    url = f"{host.url}/sandboxes/{sandbox.sandbox_id}/metrics"
    assert httpx.get(url, timeout=30).status_code == 401
    assert httpx.get(url, headers={"X-API-KEY": "e2b_" + "0" * 40}, timeout=30).status_code == 401
    # a sandbox's own token is not the host's key either
    token = sandbox.traffic_access_token or ""
    assert httpx.get(url, headers={"X-API-KEY": token}, timeout=30).status_code == 401
