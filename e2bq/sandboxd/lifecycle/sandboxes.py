"""The live sandboxes of one host: create, look up, extend, expire and kill them.

Each sandbox is a jail running the agent; sandboxd keeps, per sandbox, its tokens, its lifetime,
and the ports it has published (requests reach its agent through http.upstream).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import HostError, LaunchError, SetupError
from ..jail import egress
from ..jail.egress import EgressRules, ResolvedEgress
from ..jail.limits import Limits
from ..metrics import HostMetrics
from ..settings import HostSettings
from ..volumes.mounts import Bind, VolumeMount
from ..volumes.store import VolumeStore
from . import adopt, fspause, pause
from .launcher import Jail, Launcher
from .pause import Lifecycle
from .pools import Pools, pool_sizes
from .ports import PortPublisher
from .snapshots import SnapshotStore
from .templateroots import TemplateRoots

log = logging.getLogger("e2bq.sandboxd")

ENVD_VERSION = "0.6.4"
CLIENT_ID = "e2bq-local"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def new_sandbox_id() -> str:
    return "i" + secrets.token_hex(10)[:19]


@dataclass
class Sandbox:
    sandbox_id: str
    template_id: str
    metadata: dict[str, str]
    envs: dict[str, str]
    started_at: float
    end_at: float
    access_token: str
    traffic_token: str
    jail: Jail
    ports: PortPublisher
    state: str = "running"
    killed: asyncio.Event = field(default_factory=asyncio.Event)
    # What happens at the timeout, and whether a request wakes it when paused (see lifecycle.pause).
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    timeout: int = 300  # seconds it was created with: the lifetime an auto-resume gives it again
    paused_at: float | None = None
    transition: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Outbound rules as asked (create's network= or update_network), None if never asked; they
    # live in the jail's network namespace (see jail.egress).
    network: EgressRules | None = None
    volume_mounts: list[VolumeMount] = field(default_factory=list)
    # Paused without its memory: no process, its disk kept (see lifecycle.fspause).
    filesystem_paused: bool = False

    def check_pausable(self) -> None:
        """Before a pause: HostError 409 if it is paused already (either way), 404 if it is gone."""
        if self.state == "paused":
            raise HostError(409, f"sandbox {self.sandbox_id} is already paused")
        if self.state != "running":
            raise HostError(404, f"sandbox {self.sandbox_id} not found")

    def alive(self, now: float | None = None) -> bool:
        """Not past its timeout; a paused sandbox's clock is stopped, so it is alive until killed,
        and one that pauses at its timeout is alive in the moment before the sweeper pauses it."""
        if self.state == "paused" or self.lifecycle.on_timeout == "pause":
            return self.state != "killed"
        return self.end_at > (time.time() if now is None else now)

    def summary(self) -> dict[str, Any]:
        return {
            "templateID": self.template_id,
            "alias": self.template_id,
            "sandboxID": self.sandbox_id,
            "clientID": CLIENT_ID,
            "startedAt": _iso(self.started_at),
            "endAt": _iso(self.end_at),
            "cpuCount": max(1, round(self.jail.limits.cpu)),
            "memoryMB": self.jail.limits.memory_mb,
            "diskSizeMB": self.jail.limits.disk_mb,
            "state": self.state,
            "envdVersion": ENVD_VERSION,
            "metadata": self.metadata,
            "volumeMounts": self.volume_mounts,
        }

    def detail(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "envdAccessToken": self.access_token,
            "domain": None,
            "allow_internet_access": self.jail.internet,
            "lifecycle": self.lifecycle.detail(),
            **({"network": self.network.info()} if self.network is not None else {}),
        }

    def created(self) -> dict[str, Any]:
        return {
            "templateID": self.template_id,
            "sandboxID": self.sandbox_id,
            "clientID": CLIENT_ID,
            "envdVersion": ENVD_VERSION,
            "envdAccessToken": self.access_token,
            "trafficAccessToken": self.traffic_token,
            "domain": None,
        }


class SandboxHost:
    """Every sandbox of this sandboxd, and the folder they live in."""

    def __init__(self, settings: HostSettings) -> None:
        self.settings = settings
        self.sandboxes: dict[str, Sandbox] = {}
        self._own_state_dir = settings.state_dir is None
        self.state_dir = settings.state_dir or Path(tempfile.mkdtemp(prefix="e2bq-sandboxd-"))
        self.launcher: Launcher | None = None
        self.pools: Pools | None = None
        self.snapshots: SnapshotStore | None = None
        self.metrics = HostMetrics()
        self.volumes = VolumeStore(self.state_dir / "volumes", size_mb=settings.volume_mb)
        self.templates = TemplateRoots(settings.templates_dir, host_root=settings.host_root)
        self._sweeper: asyncio.Task[None] | None = None
        self._creating = 0
        # When this run of the host began: a node whose host restarted has lost the sandboxes it had.
        self.started_at = time.time()

    # -- lifecycle of the host -----------------------------------------------------------------

    async def start(self) -> None:
        if not self.settings.python.exists():
            raise SetupError(
                f"sandbox runtime {self.settings.runtime} is missing: "
                "run `e2bq sandboxd install-runtime` (or set E2BQ_SANDBOX_RUNTIME)"
            )
        if shutil.which("bwrap") is None:
            raise SetupError("bubblewrap is not installed: apt-get install -y bubblewrap")
        self.launcher = Launcher(self.settings, self.state_dir)
        self.launcher.prepare()
        self.snapshots = SnapshotStore(
            self.state_dir / "snapshots", self.launcher.layers, max_snapshots=self.settings.max_snapshots
        )
        await asyncio.to_thread(self.volumes.load)
        for kept in adopt.kept_sandboxes(self, Sandbox):  # filesystem-paused by an earlier run
            kept.ports.wake = functools.partial(pause.wake, self, kept)
            self.sandboxes[kept.sandbox_id] = kept
        if self.sandboxes:
            log.info("%d paused sandboxes kept from an earlier run", len(self.sandboxes))
            self.metrics.live.set(len(self.sandboxes))
        sizes = pool_sizes(
            self.settings.warm_pool, self.settings.warm_pool_max, self.settings.warm_pool_templates
        )
        self.pools = Pools(
            self.launcher,
            self.templates,
            sizes=sizes,
            limits=self.settings.limits,
            metrics=self.metrics,
            new_id=new_sandbox_id,
        )
        self.pools.start()
        self._sweeper = asyncio.create_task(self._sweep())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.pools is not None:
            await self.pools.close()
        if not self._own_state_dir:  # a folder of its own is removed below: nothing would survive
            await fspause.shelve_all(self)
        await asyncio.gather(*(self.kill(sid) for sid in list(self.sandboxes)))
        if self.launcher is not None:
            self.launcher.close()
        await asyncio.to_thread(self.volumes.close)
        if self._own_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            if self.pools is not None:
                await self.pools.refresh()
            now = time.time()
            for sandbox in list(self.sandboxes.values()):
                if sandbox.state == "paused":
                    continue  # its clock is stopped: it waits for a resume or a kill
                if sandbox.transition.locked():
                    continue  # pausing: its jail ends on purpose when it pauses to disk
                if sandbox.end_at <= now:
                    log.info("sandbox %s expired", sandbox.sandbox_id)
                    if not await pause.on_timeout(self, sandbox):
                        await self.kill(sandbox.sandbox_id, reason="expired")
                elif sandbox.jail.proc is not None and sandbox.jail.proc.poll() is not None:
                    log.warning("sandbox %s's jail exited unexpectedly", sandbox.sandbox_id)
                    await self.kill(sandbox.sandbox_id, reason="crashed")

    # -- sandboxes -----------------------------------------------------------------------------

    @property
    def load(self) -> int:
        """Sandboxes running or being created: what counts against ``max_sandboxes``. A paused
        sandbox uses no CPU, so it does not count (its memory is still held: see the README)."""
        running = sum(1 for sandbox in self.sandboxes.values() if sandbox.state != "paused")
        return running + self._creating

    def clamp_timeout(self, timeout: Any) -> int:
        if timeout is None:
            return self.settings.default_timeout
        if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 0:
            raise HostError(400, f"timeout must be a whole number of seconds >= 0, not {timeout!r}")
        if timeout > self.settings.max_timeout:
            raise HostError(
                400, f"timeout {timeout}s is longer than this host allows ({self.settings.max_timeout}s)"
            )
        return timeout

    def limits(self, asked: dict[str, Any]) -> Limits:
        """The limits of a new sandbox: the host's, lowered where the request asks."""
        try:
            return self.settings.limits.narrowed(asked)
        except ValueError as exc:
            raise HostError(400, str(exc)) from exc

    async def create(
        self,
        template_id: str,
        timeout: int,
        metadata: dict[str, str],
        envs: dict[str, str],
        *,
        limits: Limits | None = None,
        internet: bool = True,
        lifecycle: Lifecycle | None = None,
        rules: ResolvedEgress | None = None,
        binds: list[Bind] | None = None,
        layer_ids: tuple[str, ...] = (),
    ) -> Sandbox:
        """A new sandbox; ``template_id`` may name a snapshot (its files are the new sandbox's), and
        ``layer_ids`` give the layers its disk starts from (a fork's)."""
        snapshot = self.snapshots.find(template_id) if self.snapshots and not layer_ids else None
        if snapshot is not None:
            template_id, layer_ids = snapshot["snapshotID"], (snapshot["layer"],)
        # a fork's or a snapshot's sandbox: its source's envs (the template's among them) come in envs
        if layer_ids:  # and its root on the template build its layer's root parts lie on, if any
            assert self.launcher is not None, "start() the host first"
            template = self.templates.of_layer(template_id, self.launcher.layers.root(layer_ids[0]))
        else:
            template = self.templates.find(template_id)
        if self.load >= self.settings.max_sandboxes:
            self.metrics.limits_hit.labels("sandboxes").inc()
            self.metrics.create_failures.labels("cap").inc()
            raise HostError(
                429,
                f"this host runs at most {self.settings.max_sandboxes} sandboxes at once; "
                "kill one or raise E2BQ_SANDBOXD_MAX_SANDBOXES",
            )
        assert self.launcher is not None and self.pools is not None, "start() the host first"
        limits = limits or self.settings.limits
        self._creating += 1
        started = time.monotonic()
        try:
            # a pooled jail was built without volumes' binds or layers: one that needs some is made anew
            pooled = not binds and not layer_ids
            handle = self.pools.take(envs, limits, internet, template) if pooled else None
            envs = {**template.env, **envs}
            if handle is None:
                mounts = tuple((bind.source, bind.target) for bind in binds or [])
                try:
                    handle = await self.launcher.launch(
                        new_sandbox_id(),
                        envs,
                        limits,
                        internet,
                        mounts,
                        layer_ids=layer_ids,
                        template_root=template.rootfs,
                    )
                except LaunchError as exc:
                    self.metrics.create_failures.labels("launch").inc()
                    raise HostError(500, str(exc)) from exc
            if rules is not None and handle.uplink is not None:
                await self._apply_rules(handle, rules)
        finally:
            self._creating -= 1
        sandbox_id = handle.sandbox_id
        self.metrics.create_seconds.observe(time.monotonic() - started)
        self.metrics.created.inc()
        now = time.time()
        sandbox = Sandbox(
            sandbox_id=sandbox_id,
            template_id=template_id,
            metadata=metadata,
            envs=envs,
            started_at=now,
            end_at=now + timeout,
            access_token=secrets.token_hex(16),
            traffic_token=secrets.token_hex(16),
            jail=handle,
            ports=PortPublisher(
                handle.paths.forward_socket, self.settings.host, self.settings.advertised_host
            ),
            lifecycle=lifecycle or Lifecycle(),
            timeout=timeout,
            volume_mounts=[bind.mount() for bind in binds or []],
        )
        sandbox.ports.wake = lambda: pause.wake(self, sandbox)
        self.sandboxes[sandbox_id] = sandbox
        self.metrics.live.set(len(self.sandboxes))
        log.info("sandbox %s created (template %s, %ss)", sandbox_id, template_id, timeout)
        return sandbox

    async def _apply_rules(self, handle: Jail, rules: ResolvedEgress) -> None:
        """Set a new jail's outbound rules before anyone's code runs in it; a jail whose rules
        cannot be set is ended (500), never handed out without them."""
        assert self.launcher is not None and handle.uplink is not None
        try:
            await asyncio.to_thread(egress.apply, handle.uplink.path, rules)
        except OSError as exc:
            await asyncio.to_thread(self.launcher.destroy, handle)
            self.metrics.create_failures.labels("launch").inc()
            raise HostError(500, str(exc)) from exc

    def get(self, sandbox_id: str) -> Sandbox:
        sandbox = self.sandboxes.get(sandbox_id)
        if sandbox is None or not sandbox.alive():
            raise HostError(404, f"sandbox {sandbox_id} not found")
        return sandbox

    def set_timeout(self, sandbox_id: str, timeout: int) -> None:
        self.get(sandbox_id).end_at = time.time() + timeout

    async def kill(self, sandbox_id: str, *, reason: str = "killed") -> bool:
        sandbox = self.sandboxes.pop(sandbox_id, None)
        if sandbox is None:
            return False
        self.metrics.live.set(len(self.sandboxes))
        self.metrics.ended.labels(reason).inc()
        sandbox.state = "killed"
        sandbox.killed.set()
        await sandbox.ports.close()
        if self.launcher is not None:
            oom_kills = self.launcher.oom_kills(sandbox.jail)
            if oom_kills:
                self.metrics.limits_hit.labels("memory").inc(oom_kills)
            async with sandbox.transition:  # not while a pause is half-way: destroy sees it frozen
                await asyncio.to_thread(self.launcher.destroy, sandbox.jail)
        log.info("sandbox %s killed", sandbox_id)
        return True
