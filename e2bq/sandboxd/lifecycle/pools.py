"""The warm pools of one host: one per template, each a ``WarmPool`` of jails made on that template.

The first pool is the host's own (``--warm-pool``, ``--warm-pool-max``), made on ``code-interpreter-v1``
(what the code interpreter SDK, so every worker, asks for), once that template is built here (or,
with ``E2BQ_SANDBOXD_HOST_ROOT=1``, on the host's system folders until it is).
``E2BQ_SANDBOXD_WARM_POOL_TEMPLATES`` (``name=count,...``) adds a fixed pool per named template.
Every few seconds each pool's template is looked up again: a template built, rebuilt or deleted
since gets a pool made on what its name gives now (the old pool's idle jails are ended), so a
create never takes a jail made on a stale build.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..errors import HostError
from ..jail.limits import Limits
from ..metrics import HostMetrics
from .launcher import Jail, Launcher
from .pool import WarmPool
from .templateroots import TemplateRoot, TemplateRoots

log = logging.getLogger("e2bq.sandboxd")

DEFAULT_TEMPLATE = "code-interpreter-v1"
REFRESH = 5.0  # seconds between looks at whether a pool's template changed


class Pools:
    def __init__(
        self,
        launcher: Launcher,
        templates: TemplateRoots,
        *,
        sizes: dict[str, tuple[int, int]],
        limits: Limits,
        metrics: HostMetrics,
        new_id: Callable[[], str],
    ) -> None:
        """``sizes``: template name → (floor, most) of its pool."""
        self.launcher, self.templates, self.sizes = launcher, templates, sizes
        self.limits, self.metrics, self.new_id = limits, metrics, new_id
        self._pools: dict[str, WarmPool] = {}
        self._last_refresh = 0.0

    def start(self) -> None:
        for name in self.sizes:
            template = self._find(name)
            if template is None and self.sizes[name][0] > 0:
                log.warning("no warm pool for template %s until it is built here", name)
            self._pools[name] = self._make(name, template)

    def take(
        self, envs: dict[str, str], limits: Limits, internet: bool, template: TemplateRoot
    ) -> Jail | None:
        """A ready jail of the pool that serves this create, or None (the caller launches one)."""
        for pool in self._pools.values():
            if pool.serves(envs, limits, internet, template) and (jail := pool.take()) is not None:
                return jail
        return None

    async def refresh(self) -> None:
        """Remake the pools whose template's name gives another root now (at most every REFRESH s)."""
        now = asyncio.get_running_loop().time()
        if now - self._last_refresh < REFRESH:
            return
        self._last_refresh = now
        for name, pool in list(self._pools.items()):
            template = await asyncio.to_thread(self._find, name)
            now_served = (template.rootfs, template.env) if template is not None else None
            was_served = (pool.template.rootfs, pool.template.env) if pool.max_size > 0 else None
            if now_served != was_served:
                log.info("template %s changed: its warm pool is made anew", name)
                self._pools[name] = self._make(name, template)
                await pool.close()

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        await asyncio.gather(*(pool.close() for pool in pools))

    def _report(self) -> None:
        """The pool gauges: every pool's together."""
        self.metrics.pool_ready.set(sum(pool.ready for pool in self._pools.values()))
        self.metrics.pool_target.set(sum(pool.target() for pool in self._pools.values()))

    def _find(self, name: str) -> TemplateRoot | None:
        """What ``name`` gives now; None (no pool) for a name this host does not serve."""
        try:
            return self.templates.find(name)
        except HostError as exc:
            log.debug("no warm pool for template %s: %s", name, exc.message)
            return None

    def _make(self, name: str, template: TemplateRoot | None) -> WarmPool:
        size, most = self.sizes[name] if template is not None else (0, 0)
        pool = WarmPool(
            self.launcher,
            size=size,
            max_size=most,
            limits=self.limits,
            metrics=self.metrics,
            new_id=self.new_id,
            template=template or TemplateRoot(name, None),
        )
        pool.report = self._report
        pool.start()
        return pool


def pool_sizes(floor: int, most: int, extra: tuple[tuple[str, int], ...]) -> dict[str, tuple[int, int]]:
    """The host's pool on DEFAULT_TEMPLATE, then each named one (a name given twice: the last)."""
    sizes = {DEFAULT_TEMPLATE: (floor, most)}
    sizes.update({name: (count, count) for name, count in extra if name != DEFAULT_TEMPLATE})
    return sizes
