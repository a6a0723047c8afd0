"""The pause, resume, fork and snapshot tools.

Paused means what E2B's ``Sandbox.connect`` makes it mean: any call on a paused sandbox (code,
commands, files, ...) resumes it first and is served, for as long as it had left when it was
paused; only pause_sandbox pauses. A paused sandbox stays managed and is listed with state
``paused``; it does not expire while paused (its lifetime clock stops), and shutdown_sandbox ends
it as it would a running one.
"""

from __future__ import annotations

from typing import Any

from ..types import (
    ErrorResult,
    ForkResult,
    PauseResult,
    ResumeResult,
    SnapshotDeleteResult,
    SnapshotListResult,
    SnapshotResult,
)
from .calls import tool
from .core import ToolkitCore


class LifecycleTools(ToolkitCore):
    @tool
    def pause_sandbox(
        self, sandbox_id: str | None = None, keep_memory: bool = True
    ) -> PauseResult | ErrorResult:
        """Pause a sandbox (the default one without sandbox_id): it uses no CPU and its lifetime
        stops counting; the next call on it resumes it, or resume_sandbox does.

        keep_memory=True freezes its processes where they are (variables and running servers come
        back); False keeps only its files (processes end; a resume starts fresh ones)."""
        return self.manager.pause(self._default_or(sandbox_id), keep_memory)

    @tool
    def resume_sandbox(
        self, sandbox_id: str | None = None, timeout: int | None = None
    ) -> ResumeResult | ErrorResult:
        """Resume a paused sandbox (the default one without sandbox_id) for timeout seconds (None:
        the time it had left when it was paused); resumed is False if it was running."""
        return self.manager.resume(self._default_or(sandbox_id), timeout)

    @tool
    def fork_sandbox(
        self,
        sandbox_id: str | None = None,
        count: int = 1,
        timeout: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> ForkResult | ErrorResult:
        """Copy a sandbox (the default one without sandbox_id) count times (1 to 100): each copy
        is a new managed sandbox with the same files and fresh processes, living timeout seconds.

        forks lists one outcome per copy, in order: its sandbox_id, or why that copy failed."""
        return self.manager.fork(self._default_or(sandbox_id), count, timeout, metadata)

    @tool
    def create_snapshot(
        self, sandbox_id: str | None = None, name: str | None = None
    ) -> SnapshotResult | ErrorResult:
        """Keep a sandbox's files (the default one's without sandbox_id) as a snapshot; create
        sandboxes from it with create_sandbox(template=snapshot_id). The sandbox keeps running."""
        return self.manager.create_snapshot(self._default_or(sandbox_id), name)

    @tool
    def list_snapshots(self, sandbox_id: str | None = None) -> SnapshotListResult:
        """Every snapshot the provider keeps, or only those taken of sandbox_id."""
        snapshots = self.manager.list_snapshots(sandbox_id)
        return {"status": "success", "snapshots": snapshots, "count": len(snapshots)}

    @tool
    def delete_snapshot(self, snapshot_id: str) -> SnapshotDeleteResult | ErrorResult:
        """Delete a snapshot (sandboxes made from it keep running); deleted is False if there
        was none."""
        return self.manager.delete_snapshot(snapshot_id)
