"""Pausing a sandbox with its memory, and bringing it back.

Pause freezes the sandbox's cgroup (``jail.freezer``): every process of it stops where it is and
keeps its memory, open files and sockets; it uses no CPU, and its timeout clock stops. Resume
thaws it — the processes go on as if nothing happened — and starts its timeout again. While it
is paused, the data plane answers as E2B's proxy does for a paused sandbox (502, "was not found"),
unless the sandbox was created with ``auto_resume``: then a request to its envd, interpreter or a
published port resumes it first and is served.

A sandbox created with ``on_timeout: pause`` is paused at its timeout instead of killed.
Filesystem-only pauses (``keep_memory=False``, ``mode='filesystem'``, ``autoPauseMemory: false``)
are in ``fspause``: resume dispatches to it for a sandbox paused that way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import HostError
from ..jail.freezer import FreezeError, Freezer
from . import fspause

if TYPE_CHECKING:
    from .sandboxes import Sandbox, SandboxHost

log = logging.getLogger("e2bq.sandboxd")


@dataclass(frozen=True)
class Lifecycle:
    """``lifecycle=`` of a create, as the SDK sends it (``autoPause``, ``autoResume.enabled``)."""

    on_timeout: str = "kill"  # "kill" or "pause"
    auto_resume: bool = False
    keep_memory: bool = True  # what a pause at the timeout keeps (``autoPauseMemory``)

    @classmethod
    def from_create(cls, body: dict[str, Any]) -> Lifecycle:
        """From a create request's body; raises HostError(400/501) for values it cannot serve."""
        auto_pause = body.get("autoPause", False)
        if not isinstance(auto_pause, bool):
            raise HostError(400, "autoPause must be true or false")
        keep_memory = body.get("autoPauseMemory", True)
        if not isinstance(keep_memory, bool):
            raise HostError(400, "autoPauseMemory must be true or false")
        resume = body.get("autoResume") or {}
        enabled = resume.get("enabled", False) if isinstance(resume, dict) else resume
        if not isinstance(enabled, bool):
            raise HostError(400, "autoResume must be an object {'enabled': true|false}")
        if enabled and not auto_pause:
            raise HostError(400, "auto_resume can be true only when on_timeout is 'pause'")
        if enabled and not keep_memory:
            raise HostError(
                400,
                "auto_resume cannot be true with mode 'filesystem': a filesystem-only pause is "
                "resumed with Sandbox.connect()",
            )
        return cls(on_timeout="pause" if auto_pause else "kill", auto_resume=enabled, keep_memory=keep_memory)

    def detail(self) -> dict[str, Any]:
        return {"onTimeout": self.on_timeout, "autoResume": self.auto_resume}


def _freezer(host: SandboxHost, sandbox: Sandbox) -> Freezer:
    freezer = host.launcher.cgroups.freezer(sandbox.sandbox_id) if host.launcher is not None else None
    if freezer is None:
        raise HostError(
            501,
            "this host cannot pause sandboxes: it needs cgroups with a freezer "
            "(run sandboxd as root, on cgroup v2 or with cgroup v1's freezer mounted)",
        )
    return freezer


async def pause(host: SandboxHost, sandbox: Sandbox) -> None:
    """Freeze the sandbox's processes; raises HostError 409 if it is paused already."""
    async with sandbox.transition:
        sandbox.check_pausable()
        freezer = _freezer(host, sandbox)
        started = time.perf_counter()
        try:
            # a thread: a busy group can take a while to stop every task
            await asyncio.to_thread(freezer.freeze)
        except FreezeError as exc:
            raise HostError(500, f"the sandbox could not be paused: {exc}") from exc
        if sandbox.state != "running":  # killed while it froze: its destroy thaws and ends it
            raise HostError(404, f"sandbox {sandbox.sandbox_id} not found")
        sandbox.state = "paused"
        sandbox.paused_at = time.time()
        log.info("sandbox %s paused in %.1f ms", sandbox.sandbox_id, 1000 * (time.perf_counter() - started))
    await fspause.enforce_cap(host)


async def resume(host: SandboxHost, sandbox: Sandbox, timeout: int) -> bool:
    """Thaw a paused sandbox, its timeout now ``timeout`` seconds; False if it was not paused.

    Raises HostError 429 when the host already runs its maximum of sandboxes.
    """
    async with sandbox.transition:
        if sandbox.state != "paused":
            return False
        if host.load >= host.settings.max_sandboxes:
            host.metrics.limits_hit.labels("sandboxes").inc()
            raise HostError(
                429,
                f"this host runs at most {host.settings.max_sandboxes} sandboxes at once; "
                "kill or pause one before resuming another",
            )
        if sandbox.filesystem_paused:
            await fspause.relaunch(host, sandbox, timeout)
            return True
        freezer = _freezer(host, sandbox)
        started = time.perf_counter()
        try:
            freezer.thaw()  # one write that returns at once: no worker thread needed
        except FreezeError as exc:
            raise HostError(500, f"the sandbox could not be resumed: {exc}") from exc
        sandbox.state = "running"
        sandbox.paused_at = None
        sandbox.end_at = time.time() + timeout
        log.info("sandbox %s resumed in %.2f ms", sandbox.sandbox_id, 1000 * (time.perf_counter() - started))
        return True


async def wake(host: SandboxHost, sandbox: Sandbox) -> bool:
    """Before a data-plane request or a connection to a published port: whether the sandbox runs
    (resumed first if it is paused and was created with ``auto_resume``).

    Raises HostError 429 if it would be resumed on a host already full.
    """
    if sandbox.state != "paused":
        return sandbox.state == "running"
    if not sandbox.lifecycle.auto_resume:
        return False
    await resume(host, sandbox, sandbox.timeout)
    return sandbox.state == "running"


async def on_timeout(host: SandboxHost, sandbox: Sandbox) -> bool:
    """At the sandbox's timeout: pause it if it asked for that; False if it is to be killed."""
    if sandbox.lifecycle.on_timeout != "pause":
        return False
    try:
        await (pause if sandbox.lifecycle.keep_memory else fspause.pause)(host, sandbox)
    except HostError as exc:
        if exc.status == 409:
            return True
        log.warning("sandbox %s could not be paused at its timeout, killed: %s", sandbox.sandbox_id, exc)
        return False
    return True
