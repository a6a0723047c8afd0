"""A few sandboxes launched ahead of need, so that a create answers at once.

A pooled jail is launched with the host's own limits, internet access and no environment
variables of its own; a create asking for exactly that takes one (its id becomes the sandbox's id)
and any other create launches its own. A jail serves one sandbox and is destroyed with it: nothing
is ever handed out twice. The pool refills itself in the background, one jail at a time, so a burst
of creates is not slowed by launches it did not ask for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from ..errors import LaunchError
from ..jail.limits import Limits
from ..metrics import HostMetrics
from .launcher import Jail, Launcher

log = logging.getLogger("e2bq.sandboxd")

_RETRY_AFTER = 5.0  # seconds before trying again after a launch failed


class WarmPool:
    def __init__(
        self,
        launcher: Launcher,
        *,
        size: int,
        limits: Limits,
        metrics: HostMetrics,
        new_id: Callable[[], str],
    ) -> None:
        self.launcher, self.size, self.limits = launcher, size, limits
        self.metrics, self.new_id = metrics, new_id
        self._ready: list[Jail] = []
        self._wanted = asyncio.Event()
        self._filler: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.size > 0:
            self._filler = asyncio.create_task(self._fill())

    def serves(self, envs: dict[str, str], limits: Limits, internet: bool) -> bool:
        """Whether a create asking for this can take a pooled jail."""
        return self.size > 0 and not envs and limits == self.limits and internet

    def take(self) -> Jail | None:
        """A ready jail, now, or None when there is none (the caller launches one)."""
        self._wanted.set()
        while self._ready:
            jail = self._ready.pop(0)
            self.metrics.pool_ready.set(len(self._ready))
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
        self.metrics.pool_ready.set(0)
        await asyncio.gather(*(asyncio.to_thread(self.launcher.destroy, jail) for jail in ready))

    async def _fill(self) -> None:
        while True:
            self._wanted.clear()
            while len(self._ready) < self.size:
                try:
                    jail = await self.launcher.launch(self.new_id(), {}, self.limits, True)
                except Exception as exc:  # the pool must outlive a failed launch
                    level = logging.WARNING if isinstance(exc, LaunchError) else logging.ERROR
                    log.log(level, "could not launch a sandbox for the warm pool: %s", exc)
                    await asyncio.sleep(_RETRY_AFTER)
                    continue
                self._ready.append(jail)
                self.metrics.pool_ready.set(len(self._ready))
            await self._wanted.wait()
