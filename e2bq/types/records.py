"""What e2bq keeps and lists: registry entries, node heartbeats, job records and events."""

from __future__ import annotations

from typing import Literal, NotRequired, TypeAlias, TypedDict

from .base import (
    CodeResult,
    CommandResult,
    ErrorResult,
    JobKind,
    JobRecordStatus,
    JobState,
    NodeState,
    Provider,
    SandboxState,
)


class SandboxEntry(TypedDict):
    """A managed sandbox as the registry keeps it in Redis (``e2bq:sandbox:<id>``)."""

    sandbox_id: str
    provider: Provider
    namespace: str
    template: str
    metadata: dict[str, str]
    created_at: float
    expires_at: float
    is_default: bool
    node: NotRequired[str | None]  # the node whose sandbox host runs it (None: E2B's cloud)
    node_url: NotRequired[str | None]  # that host's address, as clients reach it
    node_started_at: NotRequired[float | None]  # when the run of that host that made it began
    state: NotRequired[SandboxState]  # when listed: lost once its node stopped beating
    paused_at: NotRequired[float | None]  # set while it is paused (its lifetime clock stopped)
    resume_timeout: NotRequired[int | None]  # while paused: the seconds it had left, given back on resume


class NodeRecord(TypedDict):
    """A node's last heartbeat, as its workers publish it (``e2bq:cluster:<queue>:nodes``)."""

    node: str
    url: str  # its sandbox host, as clients reach it
    capacity: int  # sandboxes it runs at most
    live: int  # sandboxes running on it
    free: int  # capacity - live
    seen_at: float  # when a worker last heard from its sandbox host
    started_at: NotRequired[float]  # when this run of its sandbox host began: a restart ends every sandbox


class NodeInfo(NodeRecord):
    """A node as listed: its heartbeat, whether it is lost, and creates placed there in flight."""

    state: NodeState
    placed: int


class SlotInfo(TypedDict):
    """A ``SandboxSlot`` as a dict (``SandboxSlot.to_dict``)."""

    sandbox_id: str
    metadata: dict[str, str]
    created_at: float
    expires_at: float
    provider: str
    node: str | None  # its node on a local cluster (None: E2B's cloud)


class ChartImage(TypedDict):
    image_id: str
    file_url: str
    path: str


class JobRecord(TypedDict):
    """A job as the job store keeps it in Redis (``e2bq:job:<id>``), and as get_job_status reports it.

    ``result`` is, once the job ended, the dict the synchronous call would have returned.
    """

    job_id: str
    status: JobRecordStatus
    state: JobState
    kind: JobKind
    sandbox_id: str  # '' for a map (its items run in a pool of sandboxes)
    namespace: str
    task_id: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    worker: str | None
    pid: int | None
    message: str
    result: CodeResult | CommandResult | ErrorResult | None
    node: NotRequired[str | None]  # its sandbox's node (None: E2B's cloud, or a map's many)
    output: NotRequired[str]  # the tail of its output so far
    takeovers: NotRequired[int]  # how many times another worker took it over from a lost one
    handed_from: NotRequired[JobState]  # its state when its worker was found lost (queued: never started)
    lost_seen_at: NotRequired[float | None]  # when a reader first found its worker lost, untaken
    total: NotRequired[int]  # a map: its items
    done: NotRequired[int]  # a map: items that succeeded so far
    failed: NotRequired[int]  # a map: items whose result is an error so far
    callback_url: NotRequired[str]  # where its final record is POSTed when it ends
    on_done: NotRequired[str]  # the Celery task (by name) sent its final record when it ends
    on_done_queue: NotRequired[str]  # the queue of that task
    timed_out: NotRequired[bool]  # wait_job: the wait ended before the job did


JobFilter = Literal["running", "done", "error", "cancelled", "queued", "started", "handed_over"]
"""A job listing's filter: a job status, or (for a running job) its ``state`` detail."""


class JobSummary(TypedDict):
    """A job as a listing shows it: its record without ``result`` and bookkeeping fields."""

    job_id: str
    status: JobRecordStatus
    state: JobState
    kind: JobKind
    sandbox_id: str
    node: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    message: str


JobEventName = Literal["queued", "started", "handed_over", "taken_over", "ended", "cancelled"]


class JobEvent(TypedDict):
    """One entry of the job event stream (``e2bq:events``): a job's transition, as
    ``e2bq.stores.events.JobEvents`` reads it. Fields a transition does not know are ''."""

    id: str  # the stream entry's id: follow from it to read what came after
    job_id: str
    event: JobEventName
    status: str  # the job's status after the transition
    kind: str
    sandbox_id: str
    node: str
    worker: str
    at: float  # when, in seconds since the epoch (the transition's own timestamp)


class PendingItem(TypedDict):
    """get_job_results: an item of a running map that has not finished yet."""

    status: Literal["running"]
    index: int


MapItemResult: TypeAlias = CodeResult | ErrorResult
"""A finished item of a batch map: what run_python_code would have returned for it."""


class MapProgress(TypedDict):
    """A batch map's counts as its store keeps them (``e2bq:map:<id>``)."""

    total: int
    done: int  # items that succeeded
    failed: int  # items whose result is an error
    lanes: int  # lanes not yet stopped


class ManagedSandbox(SandboxEntry):
    """A managed sandbox as list_managed_sandboxes lists it."""

    has_jobs: bool  # a background job of it is running now


class AccountSandbox(TypedDict):
    """A sandbox the provider runs, whoever made it (list_account_sandboxes)."""

    sandbox_id: str
    started_at: str  # ISO 8601
    end_at: str | None  # when its timeout ends it, ISO 8601
    template_id: str
    metadata: dict[str, str]
    state: str  # the provider's: running (or paused, on E2B's cloud)
    node: str | None  # the node whose sandbox host runs it (None: E2B's cloud)
    managed: NotRequired[bool]  # whether this toolkit's namespace manages it


class ForcedShutdown(TypedDict):
    """One sandbox of force_shutdown_all: ``killed``, or ``error`` with a message."""

    status: Literal["killed", "error"]
    sandbox_id: str
    result: bool | None
    message: NotRequired[str]
