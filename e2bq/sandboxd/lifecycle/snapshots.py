"""Snapshots of a sandbox's files, and forks of a running sandbox.

A snapshot is a read-only layer (``jail.layers``) holding a copy of the sandbox's home and /tmp,
taken while its processes are frozen for a consistent copy (the sandbox then runs on, untouched).
``Sandbox.create(template=<snapshot id or name>)`` starts a sandbox whose disk is an overlay on that
layer: its files as they were, fresh processes and kernel. Memory is never kept: a snapshot here is
E2B's ``mode="filesystem"``. The records live in ``<state>/snapshots/snapshots.json`` and the layers in
``<state>/layers``, so snapshots survive a restart of sandboxd.

A fork copies the running sandbox's files once into a layer of its own (no snapshot record) and
starts ``count`` sandboxes on it; the layer goes with the last of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from ..errors import HostError
from ..jail import egress, rootlayers
from ..jail.freezer import FreezeError
from ..jail.layers import LayerError, LayerStore
from ..jail.rootlayers import RootSource
from ..volumes.mounts import Bind

if TYPE_CHECKING:
    from .sandboxes import Sandbox, SandboxHost

log = logging.getLogger("e2bq.sandboxd")

MAX_FORKS = 100  # per call (E2B's SDK sends at most 20)
# Forks launched at once. fork(10) of a 100 MB sandbox, 2 cores, alternating runs: p50 ~1.9 s at
# 10, ~2.1 s at 4 (more at once only queue for the same cores and the one fork server).
FORK_CONCURRENCY = 10
LIST_LIMIT = 100


class SnapshotRecord(TypedDict):
    snapshotID: str
    names: list[str]
    sandboxID: str  # the sandbox it was taken from
    layer: str
    createdAt: float


def _bare_name(name: str) -> str:
    """A name as the SDK may qualify it: ``team/name:tag`` → ``name``."""
    return name.rpartition("/")[2].partition(":")[0]


def _matches(record: SnapshotRecord, key: str) -> bool:
    bare = _bare_name(key)
    return key in record["names"] or bare in record["names"] or bare == record["snapshotID"]


class SnapshotStore:
    """The snapshot records of one sandboxd (a JSON file), their layers in ``layers``."""

    def __init__(self, folder: Path, layers: LayerStore, *, max_snapshots: int) -> None:
        self.folder = folder
        self.layers = layers
        self.max_snapshots = max_snapshots
        self._lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)
        self._records: dict[str, SnapshotRecord] = self._load()

    @property
    def _index(self) -> Path:
        return self.folder / "snapshots.json"

    def _load(self) -> dict[str, SnapshotRecord]:
        try:
            records: list[SnapshotRecord] = json.loads(self._index.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("snapshot records at %s unreadable, starting with none: %s", self._index, exc)
            return {}
        return {r["snapshotID"]: r for r in records if self.layers.tree(r["layer"]).is_dir()}

    def _save(self) -> None:
        temporary = self._index.with_suffix(".tmp")
        temporary.write_text(json.dumps(list(self._records.values())))
        temporary.replace(self._index)

    def find(self, key: str) -> SnapshotRecord | None:
        """The snapshot with this id or name (a name may carry a namespace or a tag)."""
        if key in self._records:
            return self._records[key]
        for record in self._records.values():
            if _matches(record, key):
                return record
        return None

    def add(self, sandbox_id: str, name: str | None, layer: str) -> SnapshotRecord:
        """Record a captured layer as a snapshot; a name already used points to the new layer
        (E2B: a new build of the same template), the old layer kept while sandboxes use it."""
        with self._lock:
            existing = self.find(name) if name else None
            self.check_room(name)
            snapshot_id = existing["snapshotID"] if existing else "snapshot-" + secrets.token_hex(6)
            record = SnapshotRecord(
                snapshotID=snapshot_id,
                names=[name] if name else [],
                sandboxID=sandbox_id,
                layer=layer,
                createdAt=time.time(),
            )
            self._records[snapshot_id] = record
            self._save()
        if existing is not None:
            self.layers.unpin(existing["layer"])
        return record

    def check_room(self, name: str | None) -> None:
        """Raise HostError 400 if a new snapshot would pass the cap (a name in use replaces one)."""
        if len(self._records) >= self.max_snapshots and not (name and self.find(name)):
            raise HostError(
                400,
                f"this host keeps at most {self.max_snapshots} snapshots; delete one "
                "(Sandbox.delete_snapshot) or raise E2BQ_SANDBOXD_MAX_SNAPSHOTS",
            )

    def delete(self, key: str) -> bool:
        """Delete the snapshot; sandboxes made from it run on (its layer goes when they end)."""
        with self._lock:
            record = self.find(key)
            if record is None:
                return False
            del self._records[record["snapshotID"]]
            self._save()
        self.layers.unpin(record["layer"])
        return True

    def page(self, *, sandbox_id: str | None, name: str | None, limit: int, token: str | None
             ) -> tuple[list[SnapshotRecord], str | None]:
        """Newest first, filtered; the next page's token (the last id shown) when more remain."""
        records = sorted(self._records.values(), key=lambda r: (-r["createdAt"], r["snapshotID"]))
        if sandbox_id:
            records = [r for r in records if r["sandboxID"] == sandbox_id]
        if name:
            records = [r for r in records if _matches(r, name)]
        if token:
            ids = [r["snapshotID"] for r in records]
            if token not in ids:
                raise HostError(400, f"nextToken {token!r} is not a token this host gave")
            records = records[ids.index(token) + 1:]
        page = records[:limit]
        return page, page[-1]["snapshotID"] if len(records) > limit else None


async def capture(host: SandboxHost, sandbox: Sandbox, *, pinned: bool) -> str:
    """Copy the sandbox's files into a new layer, its processes frozen meanwhile (the copy is then
    consistent) and thawed after; its id. Raises HostError."""
    assert host.launcher is not None, "start() the host first"
    launcher = host.launcher
    async with sandbox.transition:  # no pause, resume or kill half-way through the copy
        if sandbox.state not in ("running", "paused"):
            raise HostError(404, f"sandbox {sandbox.sandbox_id} not found")
        if sandbox.filesystem_paused:  # its disk is not mounted: nothing to copy from
            raise HostError(
                409,
                f"sandbox {sandbox.sandbox_id} is paused to disk: resume it (connect) to snapshot or fork it",
            )
        freezer = launcher.cgroups.freezer(sandbox.sandbox_id) if sandbox.state == "running" else None
        started = time.perf_counter()
        try:
            if freezer is not None:
                await asyncio.to_thread(freezer.freeze)
            try:
                return await asyncio.to_thread(
                    launcher.layers.capture, sandbox.jail.paths.data, sandbox.jail.uid, pinned=pinned,
                    root=_root_source(launcher.layers, sandbox),
                )
            finally:
                if freezer is not None:
                    with contextlib.suppress(FreezeError):
                        freezer.thaw()
                elapsed = 1000 * (time.perf_counter() - started)
                log.info("sandbox %s copied in %.0f ms", sandbox.sandbox_id, elapsed)
        except (FreezeError, LayerError) as exc:
            raise HostError(500, f"the sandbox's files could not be copied: {exc}") from exc


def _root_source(layers: LayerStore, sandbox: Sandbox) -> RootSource | None:
    """What a capture copies of a templated sandbox's root: its own upper folder, and the chain of
    root parts below it if it was made from a layer; None for a sandbox on the host's root."""
    jail = sandbox.jail
    if jail.rootfs is None:
        return None
    if jail.range_base is None:  # its root's files then belong to one uid: nothing canonical to copy
        raise HostError(501, f"sandbox {sandbox.sandbox_id} has no uid range of its own (sandboxd not root)")
    recorded = layers.root(jail.layers[0]) if jail.layers else None
    return RootSource(
        upper=rootlayers.upper_of(jail.paths, layered=bool(jail.layers)),
        base=jail.range_base,
        below=layers.system(jail.layers[0]) if jail.layers else None,
        template=recorded["template"] if recorded else sandbox.template_id,
        rootfs=jail.rootfs,
    )


async def fork(host: SandboxHost, sandbox: Sandbox, count: int, timeout: int) -> list[dict[str, Any]]:
    """``count`` new sandboxes on a copy of the sandbox's files; one result per fork, in order:
    ``{"sandbox": <created>}`` or ``{"error": {"code", "message"}}``, as E2B's fork answers."""
    assert host.launcher is not None, "start() the host first"
    layers = host.launcher.layers
    layer = await capture(host, sandbox, pinned=False)
    # A fork is made as its source was: the same outbound rules (never looser than its source) and
    # the same volumes at the same paths.
    rules = None
    if sandbox.network is not None:
        rules = await asyncio.to_thread(egress.resolve, sandbox.network, host.settings.block_private_networks)
    binds = [
        Bind(host.volumes.data(volume), mount["path"], volume)
        for mount in sandbox.volume_mounts
        if (volume := host.volumes.by_name(mount["name"])) is not None
    ]
    holder = f"fork-{secrets.token_hex(4)}"  # holds the layer until every fork has taken it
    layers.acquire(layer, holder)
    gate = asyncio.Semaphore(FORK_CONCURRENCY)

    async def one() -> dict[str, Any]:
        async with gate:
            try:
                child = await host.create(
                    sandbox.template_id, timeout, dict(sandbox.metadata), dict(sandbox.envs),
                    limits=sandbox.jail.limits, internet=sandbox.jail.internet, layer_ids=(layer,),
                    rules=rules, binds=binds,
                )
                child.network = sandbox.network
            except HostError as exc:
                return {"error": {"code": exc.status, "message": exc.message}}
            return {"sandbox": child.created()}

    try:
        return list(await asyncio.gather(*(one() for _ in range(count))))
    finally:
        await asyncio.to_thread(layers.release, holder, (layer,))
