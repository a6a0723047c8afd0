"""The results of pausing, resuming and forking sandboxes, and of their snapshots."""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

from .base import _Result
from .records import SandboxEntry


class PauseResult(_Result):
    """pause_sandbox, and its task: ``paused`` is False when it was paused already."""

    status: Literal["success"]
    sandbox_id: str
    paused: bool
    keep_memory: bool  # False: a filesystem-only pause (its processes ended, its files kept)
    paused_at: float


class ResumeResult(_Result):
    """resume_sandbox, and its task: ``resumed`` is False when it was running already."""

    status: Literal["success"]
    sandbox_id: str
    resumed: bool
    timeout: int  # seconds it lives from the resume
    expires_at: float


class ForkOutcome(TypedDict):
    """One fork of fork_sandbox: a new managed sandbox, or why that one failed (in its place)."""

    status: Literal["success", "error"]
    sandbox_id: str | None  # None for a fork that failed
    result: NotRequired[SandboxEntry]  # the fork's registry entry
    message: NotRequired[str]
    error_type: NotRequired[str]


class ForkResult(_Result):
    """fork_sandbox, and its task: one outcome per fork asked for, in order; ``count`` made."""

    status: Literal["success"]
    sandbox_id: str  # the sandbox forked
    forks: list[ForkOutcome]
    count: int


class SnapshotInfo(TypedDict):
    """A snapshot: a sandbox's filesystem kept as a reusable source of new sandboxes."""

    snapshot_id: str  # pass it as create_sandbox(template=...)
    names: list[str]
    node: str | None  # the node whose sandbox host keeps it (None: E2B's cloud)
    sandbox_id: NotRequired[str]  # the sandbox it was taken of, when taken through e2bq


class SnapshotResult(SnapshotInfo):
    """create_snapshot, and its task."""

    status: Literal["success"]
    message: NotRequired[str]


class SnapshotListResult(_Result):
    """list_snapshots, and its task."""

    status: Literal["success"]
    snapshots: list[SnapshotInfo]
    count: int


class SnapshotDeleteResult(_Result):
    """delete_snapshot, and its task: ``deleted`` is False when no such snapshot existed."""

    status: Literal["success"]
    snapshot_id: str
    deleted: bool
