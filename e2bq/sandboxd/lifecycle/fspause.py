"""Pausing a sandbox without its memory (filesystem-only), and bringing it back on the same disk.

A filesystem pause ends every process of the sandbox and releases its cgroups and network, and
keeps its disk image (home, /tmp, everything it wrote) unmounted in its folder, with a record
beside it (``persist``). It holds no memory and no CPU. Resume starts a fresh jail — agent and
kernel — on that disk: the files are there, processes and kernel state are not; the sandbox keeps
its id, tokens, metadata, envs, limits, internet access and lifecycle.

Because it is only files, a filesystem-paused sandbox survives a restart of sandboxd with the same
state folder: ``adopt`` finds the records at start-up. Memory cannot survive a restart, so at
shutdown :func:`shelve_all` turns memory-paused sandboxes into filesystem-paused ones.

Memory-paused sandboxes hold their RAM: past ``max_paused`` of them, the oldest is turned into a
filesystem-paused one (:func:`enforce_cap`). A pause then never fails for capacity, and what the
sandbox loses (its processes) is what a restart of the host would cost it anyway.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import TYPE_CHECKING

from ..errors import HostError, LaunchError
from ..jail import egress
from . import persist
from .persist import PausedRecord

if TYPE_CHECKING:
    from .sandboxes import Sandbox, SandboxHost

log = logging.getLogger("e2bq.sandboxd")


async def pause(host: SandboxHost, sandbox: Sandbox) -> None:
    """Filesystem-only pause; raises HostError 409 if it is paused already (either way)."""
    async with sandbox.transition:
        sandbox.check_pausable()
        await to_disk(host, sandbox)


async def to_disk(host: SandboxHost, sandbox: Sandbox) -> None:
    """Turn a running or memory-paused sandbox into a filesystem-paused one. The caller holds
    ``sandbox.transition``. Raises HostError 500 if its disk cannot be kept."""
    assert host.launcher is not None, "start() the host first"
    started = time.perf_counter()
    try:
        disk = await asyncio.to_thread(host.launcher.suspend, sandbox.jail)
    except OSError as exc:  # its disk stayed busy after every process ended: its files stay there
        raise HostError(
            500, f"the sandbox could not be paused: {exc}; its processes have ended: kill it"
        ) from exc
    if sandbox.state == "killed":  # killed meanwhile: its destroy, waiting for the lock, removes all
        raise HostError(404, f"sandbox {sandbox.sandbox_id} not found")
    sandbox.paused_at = sandbox.paused_at or time.time()
    sandbox.state = "paused"
    sandbox.filesystem_paused = True
    persist.write(sandbox.jail.paths.root, _record(sandbox, disk))
    log.info(
        "sandbox %s paused to disk in %.1f ms", sandbox.sandbox_id, 1000 * (time.perf_counter() - started)
    )


async def relaunch(host: SandboxHost, sandbox: Sandbox, timeout: int) -> None:
    """Start a filesystem-paused sandbox again on its disk. The caller holds ``sandbox.transition``
    and has checked the host's capacity. Raises HostError 500 (it stays paused, its disk kept)."""
    assert host.launcher is not None, "start() the host first"
    record = persist.read(sandbox.jail.paths.root)
    if record is None:
        raise HostError(500, f"sandbox {sandbox.sandbox_id}'s paused record is unreadable: see the host log")
    old = sandbox.jail
    started = time.perf_counter()
    try:
        sandbox.jail = await host.launcher.relaunch(
            sandbox.sandbox_id, sandbox.envs, old.limits, old.internet, record["disk"], old.binds
        )
    except LaunchError as exc:
        raise HostError(500, f"the sandbox could not be resumed: {exc}") from exc
    try:
        await _rules_again(host, sandbox)
    except (OSError, ValueError) as exc:  # never run without its rules: back to disk
        await asyncio.to_thread(host.launcher.suspend, sandbox.jail)
        raise HostError(500, f"the sandbox's network rules could not be set again: {exc}") from exc
    persist.remove(sandbox.jail.paths.root)
    sandbox.state = "running"
    sandbox.filesystem_paused = False
    sandbox.paused_at = None
    sandbox.end_at = time.time() + timeout
    log.info(
        "sandbox %s resumed from disk in %.0f ms", sandbox.sandbox_id, 1000 * (time.perf_counter() - started)
    )


async def _rules_again(host: SandboxHost, sandbox: Sandbox) -> None:
    """Put the sandbox's outbound rules in its new network namespace (names resolved anew)."""
    uplink = sandbox.jail.uplink
    if sandbox.network is None or uplink is None:
        return
    resolved = await asyncio.to_thread(egress.resolve, sandbox.network, host.settings.block_private_networks)
    await asyncio.to_thread(egress.apply, uplink.path, resolved)


async def enforce_cap(host: SandboxHost) -> None:
    """Turn the oldest memory-paused sandboxes into filesystem-paused ones while there are more
    than ``max_paused`` of them."""
    while True:
        held = [s for s in host.sandboxes.values() if s.state == "paused" and not s.filesystem_paused]
        if len(held) <= host.settings.max_paused:
            return
        oldest = min(held, key=lambda s: s.paused_at or 0.0)
        async with oldest.transition:
            if oldest.state != "paused" or oldest.filesystem_paused:
                continue  # resumed or killed meanwhile: count again
            try:
                await to_disk(host, oldest)
            except HostError as exc:
                log.warning("sandbox %s could not be moved to disk past the cap: %s", oldest.sandbox_id, exc)
                return
        host.metrics.limits_hit.labels("paused").inc()
        log.info(
            "sandbox %s moved to disk: more than %d paused in memory",
            oldest.sandbox_id,
            host.settings.max_paused,
        )


async def shelve_all(host: SandboxHost) -> None:
    """At shutdown: move memory-paused sandboxes to disk, then let go of every paused one (its
    folder and record stay for the next run; running sandboxes are killed by the caller)."""
    for sandbox in list(host.sandboxes.values()):
        async with sandbox.transition:
            if sandbox.state != "paused":
                continue
            if not sandbox.filesystem_paused:
                try:
                    await to_disk(host, sandbox)
                except HostError as exc:
                    log.warning("sandbox %s lost at shutdown: %s", sandbox.sandbox_id, exc)
                    continue  # killed with the running ones
            host.sandboxes.pop(sandbox.sandbox_id, None)
            await sandbox.ports.close()
    kept = sum(1 for _ in host.state_dir.glob("i*/" + persist.RECORD))
    log.info("kept %d paused sandboxes for the next run", kept)


def _record(sandbox: Sandbox, disk: persist.DiskRecord) -> PausedRecord:
    return {
        "version": persist.VERSION,
        "sandbox_id": sandbox.sandbox_id,
        "template_id": sandbox.template_id,
        "metadata": sandbox.metadata,
        "envs": sandbox.envs,
        "started_at": sandbox.started_at,
        "end_at": sandbox.end_at,
        "paused_at": sandbox.paused_at or time.time(),
        "timeout": sandbox.timeout,
        "access_token": sandbox.access_token,
        "traffic_token": sandbox.traffic_token,
        "lifecycle": dataclasses.asdict(sandbox.lifecycle),
        "limits": dataclasses.asdict(sandbox.jail.limits),
        "internet": sandbox.jail.internet,
        "disk": disk,
        "network": None
        if sandbox.network is None
        else {
            "allow_out": list(sandbox.network.allow_out),
            "deny_out": list(sandbox.network.deny_out),
            "dns_servers": None if sandbox.network.dns_servers is None else list(sandbox.network.dns_servers),
        },
        "volume_mounts": [{"name": m["name"], "path": m["path"]} for m in sandbox.volume_mounts],
    }
