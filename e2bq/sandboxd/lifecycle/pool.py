"""A few sandboxes launched ahead of need, so that a create answers at once.

A pooled jail is launched with the host's own limits, internet access and no environment
variables of its own; a create asking for exactly that takes one (its id becomes the sandbox's id)
and any other create launches its own. A jail serves one sandbox and is destroyed with it: nothing
is ever handed out twice. The pool refills itself in the background, one jail at a time, once
creates pause for QUIET seconds or it is empty, so a burst of creates is not slowed by launches
it did not ask for.

Its size: ``size`` (``--warm-pool``) jails at least; with a larger ``max_size``
(``--warm-pool-max``) it grows to the largest burst it has seen lately (the most creates it could
serve within BURST seconds, over the last MEMORY seconds), up to ``max_size``, so that the next
such burst finds a jail each, and shrinks back once the bursts are forgotten. It grows past
``size`` only while the host keeps MEMORY_RESERVE bytes available.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from ..errors import LaunchError
from ..jail.limits import Limits
from ..metrics import HostMetrics
from .launcher import Jail, Launcher
from .templateroots import TemplateRoot

log = logging.getLogger("e2bq.sandboxd")

_RETRY_AFTER = 5.0  # seconds before trying again after a launch failed
BURST = 10.0  # seconds: creates this close together count as one burst
MEMORY = 300.0  # seconds the pool remembers a burst
QUIET = 0.5  # seconds without a take before the pool refills: a burst is served first
MEMORY_RESERVE = 1 << 30  # bytes the host keeps available before the pool grows past its floor
_MEMINFO = Path("/proc/meminfo")


def memory_available() -> int | None:
    """MemAvailable in bytes (None where the kernel does not say)."""
    try:
        for line in _MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class WarmPool:
    def __init__(
        self,
        launcher: Launcher,
        *,
        size: int,
        limits: Limits,
        metrics: HostMetrics,
        new_id: Callable[[], str],
        max_size: int = 0,
        template: TemplateRoot | None = None,
    ) -> None:
        self.launcher, self.size, self.limits = launcher, size, limits
        # The template its jails are made on (see jail.rootfs), with that template's environment.
        self.template = template or TemplateRoot("", None)
        self.max_size = max(size, max_size)
        self.metrics, self.new_id = metrics, new_id
        self._ready: list[Jail] = []
        self._wanted = asyncio.Event()
        self._filler: asyncio.Task[None] | None = None
        self._demand: collections.deque[float] = collections.deque()  # times of creates it could serve
        # Sets the pool gauges; a host with a pool per template sums its pools (see ``pools``).
        self.report: Callable[[], None] = self._report_alone

    @property
    def ready(self) -> int:
        return len(self._ready)

    def _report_alone(self) -> None:
        self.metrics.pool_ready.set(len(self._ready))
        self.metrics.pool_target.set(self.target())

    def start(self) -> None:
        if self.max_size > 0:
            self._filler = asyncio.create_task(self._fill())

    def serves(self, envs: dict[str, str], limits: Limits, internet: bool, template: TemplateRoot) -> bool:
        """Whether a create asking for this (``envs``: its own, not the template's) can take a
        pooled jail."""
        return (
            self.max_size > 0
            and not envs
            and limits == self.limits
            and internet
            and template.rootfs == self.template.rootfs
            and template.env == self.template.env
        )

    def target(self) -> int:
        """How many ready jails the pool aims at now."""
        now = asyncio.get_running_loop().time()
        while self._demand and now - self._demand[0] > MEMORY:
            self._demand.popleft()
        burst, first = 0, 0
        for last, when in enumerate(self._demand):  # the busiest BURST seconds remembered
            while when - self._demand[first] > BURST:
                first += 1
            burst = max(burst, last - first + 1)
        return min(self.max_size, max(self.size, burst))

    def take(self) -> Jail | None:
        """A ready jail, now, or None when there is none (the caller launches one)."""
        self._demand.append(asyncio.get_running_loop().time())
        self.report()
        self._wanted.set()
        while self._ready:
            jail = self._ready.pop(0)
            self.report()
            if jail.proc is not None and jail.proc.poll() is None:
                self.metrics.pool_takes.labels("ready").inc()
                return jail
            log.warning("pooled sandbox %s had exited; discarding it", jail.sandbox_id)
            asyncio.get_running_loop().run_in_executor(None, self.launcher.destroy, jail)
        self.metrics.pool_takes.labels("empty").inc()
        return None

    async def close(self) -> None:
        if self._filler is not None:
            self._filler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._filler  # a launch cut short cleans up after itself
        ready, self._ready = self._ready, []
        self.report()
        await asyncio.gather(*(asyncio.to_thread(self.launcher.destroy, jail) for jail in ready))

    def _since_last_take(self) -> float:
        if not self._demand:
            return QUIET
        return asyncio.get_running_loop().time() - self._demand[-1]

    def _may_grow(self) -> bool:
        """Below its floor always; above it while the host has memory to spare."""
        if len(self._ready) < self.size:
            return True
        available = memory_available()
        return available is None or available > MEMORY_RESERVE

    async def _fill(self) -> None:
        while True:
            self._wanted.clear()
            target = self.target()
            self.report()
            while len(self._ready) < target and self._may_grow():
                if self._ready and (wait := self._since_last_take()) < QUIET:
                    await asyncio.sleep(QUIET - wait)  # launches would slow the takes it can serve
                    continue
                try:
                    jail = await self.launcher.launch(
                        self.new_id(),
                        dict(self.template.env),
                        self.limits,
                        True,
                        template_root=self.template.rootfs,
                    )
                except Exception as exc:  # the pool must outlive a failed launch
                    level = logging.WARNING if isinstance(exc, LaunchError) else logging.ERROR
                    log.log(level, "could not launch a sandbox for the warm pool: %s", exc)
                    await asyncio.sleep(_RETRY_AFTER)
                    continue
                self._ready.append(jail)
                self.report()
                target = self.target()
            while len(self._ready) > target:  # demand fell: idle jails give their memory back
                jail = self._ready.pop()
                self.report()
                await asyncio.to_thread(self.launcher.destroy, jail)
            # Wake for a take, or to shrink once the window has moved past the last creates
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), BURST if self._demand else None)
