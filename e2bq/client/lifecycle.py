"""Pausing, resuming and forking sandboxes, and their snapshots: the calls SandboxManager makes.

Paused means what E2B's ``Sandbox.connect`` makes it mean: any call on a paused sandbox (code,
commands, files...) resumes it first and is served; only :meth:`LifecycleCalls.pause` pauses. The
registry records the pause, so the sandbox is listed ``paused`` and does not expire meanwhile (its
provider stopped its lifetime clock).
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInputError, ProviderError
from ..protocol import (
    CREATE_SNAPSHOT,
    DELETE_SNAPSHOT,
    FORK_SANDBOX,
    LIST_SNAPSHOTS,
    PAUSE_SANDBOX,
    RESUME_SANDBOX,
    CreateSnapshotArgs,
    DeleteSnapshotArgs,
    ForkSandboxArgs,
    ListSnapshotsArgs,
    PauseSandboxArgs,
    ResumeSandboxArgs,
)
from ..stores.nodes import NodeStore
from ..stores.snapshots import SnapshotStore
from ..types import (
    ErrorResult,
    ForkResult,
    PauseResult,
    ResumeResult,
    SnapshotDeleteResult,
    SnapshotInfo,
    SnapshotResult,
)
from .dispatch import Dispatcher
from .inputs import check_flag, check_id, check_metadata, check_text, check_timeout
from .routing import Router

MAX_FORKS = 100  # forks one call makes at most


class LifecycleCalls:
    """SandboxManager's pause, resume, fork and snapshot calls (it sets these attributes)."""

    dispatcher: Dispatcher
    router: Router
    nodes: NodeStore
    snapshots: SnapshotStore
    namespace: str
    default_timeout: int

    def pause(self, sandbox_id: str, keep_memory: bool = True) -> PauseResult | ErrorResult:
        """Pause a sandbox: with ``keep_memory`` its processes are frozen where they are, else
        only its files are kept. Its lifetime clock stops; any later call on it resumes it."""
        check_flag(keep_memory, "keep_memory")
        args = PauseSandboxArgs(sandbox_id=check_id(sandbox_id, "sandbox_id"), keep_memory=keep_memory)
        return self.dispatcher.call(PAUSE_SANDBOX, args)

    def resume(self, sandbox_id: str, timeout: int | None = None) -> ResumeResult | ErrorResult:
        """Resume a paused sandbox for ``timeout`` seconds (None: the seconds it had left)."""
        check_timeout(timeout)
        args = ResumeSandboxArgs(
            sandbox_id=check_id(sandbox_id, "sandbox_id"), timeout=int(timeout) if timeout else None
        )
        return self.dispatcher.call(RESUME_SANDBOX, args)

    def fork(
        self,
        sandbox_id: str,
        count: int = 1,
        timeout: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> ForkResult | ErrorResult:
        """``count`` (1 to 100) copies of a sandbox's files, each a new managed sandbox on its node
        with fresh processes, living ``timeout`` seconds (``default_timeout`` if None)."""
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_FORKS:
            raise InvalidInputError(f"count must be a whole number from 1 to {MAX_FORKS}, not {count!r:.80}")
        check_timeout(timeout)
        args = ForkSandboxArgs(
            sandbox_id=check_id(sandbox_id, "sandbox_id"),
            count=count,
            timeout=int(timeout or self.default_timeout),
            metadata=check_metadata(metadata),
            namespace=self.namespace,
        )
        return self.dispatcher.call(FORK_SANDBOX, args)

    def create_snapshot(self, sandbox_id: str, name: str | None = None) -> SnapshotResult | ErrorResult:
        """Keep a sandbox's files as a snapshot (named ``name``, if given) to create sandboxes from."""
        args = CreateSnapshotArgs(
            sandbox_id=check_id(sandbox_id, "sandbox_id"),
            name=None if name is None else check_text(name, "name"),
        )
        return self.dispatcher.call(CREATE_SNAPSHOT, args)

    def list_snapshots(self, sandbox_id: str | None = None) -> list[SnapshotInfo]:
        """Every snapshot the provider keeps (each live node's), or only those of ``sandbox_id``.
        ProviderError when a listing fails."""
        source = None if sandbox_id is None else check_id(sandbox_id, "sandbox_id")
        if not self.nodes.any():
            nodes: list[str | None] = [None]
        else:
            nodes = [node["node"] for node in self.nodes.list() if node["state"] == "live"]
        listed: list[SnapshotInfo] = []
        for node in nodes:
            args = ListSnapshotsArgs(node=node, source=source)
            result = self.dispatcher.call(LIST_SNAPSHOTS, args, route=self.router.to_node(node))
            if result["status"] != "success":
                raise ProviderError(
                    f"cannot list the snapshots of {node or 'the provider'}: {result['message']}"
                )
            listed.extend(result["snapshots"])
        return listed

    def delete_snapshot(self, snapshot_id: str) -> SnapshotDeleteResult | ErrorResult:
        """Delete a snapshot, on the node that keeps it (``deleted`` False: there was none)."""
        check_text(snapshot_id, "snapshot_id")
        known = self.snapshots.get(snapshot_id)
        route = self.router.to_node(known["node"]) if known is not None else None
        return self.dispatcher.call(DELETE_SNAPSHOT, DeleteSnapshotArgs(snapshot_id=snapshot_id), route=route)
