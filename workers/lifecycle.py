"""Pausing, resuming and forking sandboxes, and their snapshots, through the async SDK.

Paused means what E2B's ``Sandbox.connect`` makes it mean: a call on a paused sandbox resumes it
first (:func:`resumed`, which the runner calls before every operation on a sandbox) and is served;
only pause_sandbox pauses. The registry records the pause (``paused_at``, and the seconds the
sandbox had left, which a resume gives back), so the sandbox is listed ``paused`` and its record
does not expire while its provider's clock is stopped.
"""

from __future__ import annotations

import time
from typing import Any

from e2b_code_interpreter import AsyncSandbox

from e2bq.protocol import (
    CreateSnapshotArgs,
    DeleteSnapshotArgs,
    ForkSandboxArgs,
    ListSnapshotsArgs,
    PauseSandboxArgs,
    ResumeSandboxArgs,
)
from e2bq.stores.snapshots import SnapshotStore
from e2bq.types import (
    ForkOutcome,
    ForkResult,
    PauseResult,
    ResumeResult,
    SandboxEntry,
    SnapshotDeleteResult,
    SnapshotInfo,
    SnapshotListResult,
    SnapshotResult,
)

from .operations import Context, host_started_at
from .translate import translate

FORK_BATCH = 20  # the SDK sends at most this many forks a request (its MAX_FORK_COUNT)
_DEFAULT_LIFETIME = 300  # seconds a sandbox resumed with no timeout known lives, as E2B's default
_PAGE = 100


async def pause_sandbox(ctx: Context, args: PauseSandboxArgs) -> PauseResult:
    """Pause the sandbox (with its memory, or only its files) and record it paused."""
    sandbox_id, keep_memory = args["sandbox_id"], args["keep_memory"]
    paused = await AsyncSandbox.pause(sandbox_id, keep_memory=keep_memory, **ctx.settings.sdk_options())
    entry = ctx.registry.get(sandbox_id)
    paused_at = entry.get("paused_at") if entry is not None and not paused else None
    if paused_at is None:  # paused now, or earlier but not through e2bq
        paused_at = time.time()
        ctx.registry.mark_paused(sandbox_id, paused_at)
    ctx.loop.expiry.pop(sandbox_id, None)
    return {
        "status": "success",
        "sandbox_id": sandbox_id,
        "paused": bool(paused),
        "keep_memory": keep_memory,
        "paused_at": float(paused_at),
    }


async def resume_sandbox(ctx: Context, args: ResumeSandboxArgs) -> ResumeResult:
    """Resume a paused sandbox for ``timeout`` seconds (None: the seconds it had left when it was
    paused); a running one has its timeout extended to at least that (never shortened)."""
    sandbox_id = args["sandbox_id"]
    entry = ctx.registry.get(sandbox_id)
    info = await AsyncSandbox.get_info(sandbox_id, **ctx.settings.sdk_options())
    was_paused = str(getattr(info.state, "value", info.state)) == "paused"
    timeout = args["timeout"] or _time_left(entry)
    sandbox = await AsyncSandbox.connect(sandbox_id, timeout=timeout, **ctx.settings.sdk_options())
    ctx.loop.remember(sandbox)
    expires_at = time.time() + timeout
    if not was_paused and entry is not None:  # a running sandbox's timeout is never shortened
        expires_at = max(expires_at, entry["expires_at"])
    started_at = await host_started_at(ctx) if ctx.settings.provider == "local" else None
    ctx.registry.mark_running(sandbox_id, expires_at, host_started_at=started_at)
    ctx.loop.expiry[sandbox_id] = expires_at
    return {
        "status": "success",
        "sandbox_id": sandbox_id,
        "resumed": was_paused,
        "timeout": timeout,
        "expires_at": expires_at,
    }


def _time_left(entry: SandboxEntry | None) -> int:
    """The seconds a sandbox had left when it was paused through e2bq (else E2B's default)."""
    if entry is not None and entry.get("resume_timeout"):
        return int(entry.get("resume_timeout") or _DEFAULT_LIFETIME)
    if entry is not None and entry["expires_at"] > time.time():
        return max(1, int(entry["expires_at"] - time.time()))
    return _DEFAULT_LIFETIME


async def resumed(ctx: Context, sandbox_id: str) -> bool:
    """Resume the sandbox if the registry says it is paused (what ``Sandbox.connect`` does for
    E2B's users); False when it was not paused. Called before each operation on a sandbox."""
    if not ctx.registry.is_paused(sandbox_id):
        return False
    await resume_sandbox(ctx, ResumeSandboxArgs(sandbox_id=sandbox_id, timeout=None))
    return True


async def fork_sandbox(ctx: Context, args: ForkSandboxArgs) -> ForkResult:
    """Fork the sandbox ``count`` times (in batches the SDK can send); each fork is recorded as a
    managed sandbox on this worker's node, and each failure is returned in its fork's place."""
    sandbox_id = args["sandbox_id"]
    source = ctx.registry.get(sandbox_id)
    started_at = await host_started_at(ctx) if ctx.settings.provider == "local" else None
    forks: list[ForkOutcome] = []
    left = args["count"]
    while left > 0:
        batch = min(left, FORK_BATCH)
        made = await AsyncSandbox.fork(
            sandbox_id, timeout=args["timeout"], count=batch, **ctx.settings.sdk_options()
        )
        now = time.time()
        for fork in made:
            if isinstance(fork, BaseException):
                error = translate(fork)
                forks.append(
                    {
                        "status": "error",
                        "sandbox_id": None,
                        "message": str(error),
                        "error_type": type(error).__name__,
                    }
                )
                continue
            entry = _fork_entry(ctx, args, source, fork.sandbox_id, now, started_at)
            ctx.registry.add(entry)
            forks.append({"status": "success", "sandbox_id": fork.sandbox_id, "result": entry})
        left -= batch
    made_count = sum(1 for fork in forks if fork["status"] == "success")
    return {"status": "success", "sandbox_id": sandbox_id, "forks": forks, "count": made_count}


def _fork_entry(
    ctx: Context,
    args: ForkSandboxArgs,
    source: SandboxEntry | None,
    fork_id: str,
    now: float,
    started_at: float | None,
) -> SandboxEntry:
    """A fork's registry entry: its source's template and metadata, with the fork's own on top."""
    local = ctx.settings.provider == "local"
    metadata = {
        **(source["metadata"] if source else {}),
        **args["metadata"],
        "forked_from": args["sandbox_id"],
    }
    return {
        "sandbox_id": fork_id,
        "provider": ctx.settings.provider,
        "namespace": args["namespace"],
        "template": source["template"] if source else "code-interpreter-v1",
        "metadata": metadata,
        "created_at": now,
        "expires_at": now + args["timeout"],
        "is_default": False,
        "node": ctx.settings.node if local else None,
        "node_url": ctx.settings.node_address if local else None,
        "node_started_at": started_at,
    }


async def create_snapshot(ctx: Context, args: CreateSnapshotArgs) -> SnapshotResult:
    """Keep the sandbox's filesystem as a snapshot, and record the node that keeps it."""
    sandbox_id = args["sandbox_id"]
    taken = await AsyncSandbox.create_snapshot(sandbox_id, name=args["name"], **ctx.settings.sdk_options())
    info: SnapshotInfo = {
        "snapshot_id": str(taken.snapshot_id),
        "names": [str(name) for name in taken.names],
        "node": ctx.settings.node if ctx.settings.provider == "local" else None,
        "sandbox_id": sandbox_id,
    }
    SnapshotStore(ctx.settings, ctx.registry.redis).add(info)
    return {
        "status": "success",
        "snapshot_id": info["snapshot_id"],
        "names": info["names"],
        "node": info["node"],
        "sandbox_id": sandbox_id,
    }


async def list_snapshots(ctx: Context, args: ListSnapshotsArgs) -> SnapshotListResult:
    """The snapshots this worker's node's sandbox host keeps (E2B's cloud's for the API key),
    every page, only those of ``source`` if given."""
    paginator = AsyncSandbox.list_snapshots(args["source"], limit=_PAGE, **ctx.settings.sdk_options())
    store = SnapshotStore(ctx.settings, ctx.registry.redis)
    snapshots: list[SnapshotInfo] = []
    while paginator.has_next:
        for listed in await paginator.next_items():
            snapshots.append(_listed(listed, args["node"], store))
    return {"status": "success", "snapshots": snapshots, "count": len(snapshots)}


def _listed(listed: Any, node: str | None, store: SnapshotStore) -> SnapshotInfo:
    snapshot_id = str(listed.snapshot_id)
    info: SnapshotInfo = {"snapshot_id": snapshot_id, "names": [str(n) for n in listed.names], "node": node}
    known = store.get(snapshot_id)
    if known is not None and "sandbox_id" in known:
        info["sandbox_id"] = known["sandbox_id"]
    return info


async def delete_snapshot(ctx: Context, args: DeleteSnapshotArgs) -> SnapshotDeleteResult:
    snapshot_id = args["snapshot_id"]
    deleted = await AsyncSandbox.delete_snapshot(snapshot_id, **ctx.settings.sdk_options())
    SnapshotStore(ctx.settings, ctx.registry.redis).remove(snapshot_id)
    return {"status": "success", "snapshot_id": snapshot_id, "deleted": bool(deleted)}
