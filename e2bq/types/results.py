"""Each toolkit method's result and each task's, and their unions."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypeAlias, TypedDict

from .base import (
    CodeResult,
    CommandResult,
    ErrorResult,
    OutputStream,
    SandboxState,
    _Result,
)
from .lifecycle import (
    ForkResult,
    PauseResult,
    ResumeResult,
    SnapshotDeleteResult,
    SnapshotListResult,
    SnapshotResult,
)
from .records import (
    AccountSandbox,
    ChartImage,
    ForcedShutdown,
    JobRecord,
    JobSummary,
    ManagedSandbox,
    MapItemResult,
    PendingItem,
    SandboxEntry,
    SlotInfo,
)


class AcceptedResult(_Result):
    """A background job was queued: follow it with get_job_status, stop it with kill_job."""

    status: Literal["accepted"]
    job_id: str
    sandbox_id: str


class FanOutResult(_Result):
    """run_in_all_sandboxes: a result per sandbox id; ``message`` counts the successes."""

    status: Literal["success"]
    result: dict[str, CodeResult | ErrorResult]
    results: dict[str, CodeResult | ErrorResult]  # the same map, under agno's E2BTools' key


class EachResult(_Result):
    """The run_code_each task: one node's results of a fan-out, by sandbox id."""

    status: Literal["success"]
    results: dict[str, CodeResult | ErrorResult]


class TransferResult(_Result):
    """A file written into or read out of a sandbox (the worker's side of a transfer)."""

    status: Literal["success"]
    sandbox_id: str
    sandbox_path: str
    size: int


class FileResult(TransferResult):
    """upload_file and download_file_from_sandbox: the transfer, and the local file's path."""

    local_path: str


class PngResult(_Result):
    """download_png_result: the image saved at ``path``; ``result``: whether the agent got it."""

    status: Literal["success"]
    sandbox_id: str
    path: str
    size: int
    result: bool
    image_id: str  # the image's id, as agno's Image carries it
    file_url: str  # file:// URL of the saved image


class ChartResult(_Result):
    """download_chart_data: the chart saved as JSON at ``path``; ``result``: the chart itself."""

    status: Literal["success"]
    sandbox_id: str
    path: str
    size: int
    result: dict[str, Any]
    chart_path: str  # ``path`` again, under agno's E2BTools' key
    chart_image: NotRequired[ChartImage]  # its PNG, saved beside it (add_as_artifact)


class UrlResult(_Result):
    """get_public_url: where the client's machine reaches ``port`` in the sandbox."""

    status: Literal["success"]
    sandbox_id: str
    port: int
    url: str


class PortResult(UrlResult):
    """The wait_for_port task: the URL, and whether something accepted connections on the port."""

    result: bool


class ServerResult(_Result):
    """run_server: the server's URL and job; ``error`` status when it exited or never answered."""

    status: Literal["success", "error"]
    sandbox_id: str
    port: int
    url: str
    result: bool
    job_id: str


class JobListResult(TypedDict):
    """list_jobs: the namespace's newest jobs first."""

    status: Literal["success"]
    namespace: str
    jobs: list[JobSummary]
    count: int


class MapAcceptedResult(_Result):
    """map_python_code: the batch map was queued as job ``job_id`` of ``total`` items."""

    status: Literal["accepted"]
    job_id: str
    total: int


class MapResults(_Result):
    """get_job_results: the items ``offset`` onwards of a map of ``total``, in input order."""

    status: Literal["success"]
    job_id: str
    offset: int
    total: int
    results: list[MapItemResult | PendingItem]


class LanesResult(_Result):
    """The map_lanes task: how many lanes it ran and items it recorded."""

    status: Literal["success"]
    job_id: str
    lanes: int
    items: int


class JobOutputPage(_Result):
    """get_job_output: bytes ``offset`` to ``next_offset`` of a job's ``stream``, as text.

    Offsets count bytes of the stream's UTF-8; a page never splits a character. ``size`` is the
    stream's length so far, ``truncated`` says the job's output reached its cap (a marker line in
    the stream says where), ``complete`` that the job ended and this page reached the end.
    """

    status: Literal["success"]
    job_id: str
    stream: OutputStream
    offset: int
    next_offset: int
    data: str
    size: int
    truncated: bool
    complete: bool


class JobNotFoundResult(TypedDict):
    """get_job_status of a job id with no record."""

    status: Literal["not_found"]
    job_id: str
    message: str


class KillResult(_Result):
    """kill_job: ``cancelled`` (it will not run, or its work was stopped: ``killed_proc`` says
    whether a process or cell was found running and stopped), ``not_cancelled`` (it had already
    ended) or ``not_found``."""

    status: Literal["cancelled", "not_cancelled", "not_found"]
    job_id: str
    killed_proc: bool
    result: NotRequired[Literal["cancelled"]]


class CancelResult(_Result):
    """The cancel_job task: whether a job's process was found and killed in its sandbox."""

    status: Literal["success"]
    job_id: str
    result: bool


class SandboxResult(_Result):
    """create_sandbox: the new sandbox's slot."""

    status: Literal["success"]
    sandbox_id: str
    result: SlotInfo


class SandboxEntryResult(_Result):
    """The create_sandbox and connect_sandbox tasks: the sandbox's registry entry."""

    status: Literal["success"]
    sandbox_id: str
    result: SandboxEntry


class SandboxListResult(_Result):
    status: Literal["success"]
    sandboxes: list[ManagedSandbox]
    count: int
    default_sandbox_id: str | None


class AccountListResult(_Result):
    """list_account_sandboxes, and the list_sandboxes task (one node's, or E2B's cloud's)."""

    status: Literal["success"]
    sandboxes: list[AccountSandbox]
    count: int


class SandboxStatusResult(_Result):
    """get_sandbox_status: a managed sandbox as the registry and its node see it."""

    status: Literal["success"]
    sandbox_id: str
    metadata: dict[str, str]
    state: SandboxState
    is_default: bool
    has_jobs: bool
    created_at: float
    expires_at: float
    node: str | None
    paused_at: float | None  # when it was paused through e2bq (None: it is not paused)


class TimeoutResult(_Result):
    """set_sandbox_timeout, and its task: the sandbox now ends ``timeout`` seconds from the call."""

    status: Literal["success"]
    sandbox_id: str
    timeout: int
    expires_at: float


class DefaultResult(_Result):
    """set_default_sandbox and connect_to_sandbox."""

    status: Literal["success"]
    sandbox_id: str
    is_default: bool


class ShutdownResult(_Result):
    """shutdown (and the kill_sandbox task): ``result`` says whether the sandbox was running
    (None when the shutdown failed: then ``message`` says why)."""

    status: Literal["success", "error"]
    sandbox_id: str
    result: bool | None
    error_type: NotRequired[str]


class SandboxShutdownResult(_Result):
    """shutdown_sandbox: ``result`` nests the manager's shutdown result, as agno's E2BTools does;
    ``killed`` is that result's own bool."""

    status: Literal["success", "error"]
    sandbox_id: str
    result: ShutdownResult
    killed: bool | None
    default_sandbox_id: str | None  # the default after it: another managed sandbox, or none


class ShutdownAllResult(_Result):
    status: Literal["success"]
    result: dict[str, ShutdownResult]
    results: dict[str, ShutdownResult]  # the same map, under agno's E2BTools' key


class ForceShutdownAllResult(_Result):
    status: Literal["success"]
    results: dict[str, ForcedShutdown]
    result: dict[str, ForcedShutdown]


ToolResult: TypeAlias = (
    CodeResult
    | AcceptedResult
    | MapAcceptedResult
    | MapResults
    | FanOutResult
    | CommandResult
    | FileResult
    | PngResult
    | ChartResult
    | UrlResult
    | ServerResult
    | JobRecord
    | JobNotFoundResult
    | JobOutputPage
    | JobListResult
    | KillResult
    | SandboxResult
    | SandboxListResult
    | AccountListResult
    | SandboxStatusResult
    | TimeoutResult
    | DefaultResult
    | ShutdownResult
    | SandboxShutdownResult
    | ShutdownAllResult
    | ForceShutdownAllResult
    | PauseResult
    | ResumeResult
    | ForkResult
    | SnapshotResult
    | SnapshotListResult
    | SnapshotDeleteResult
    | ErrorResult
)
"""Any toolkit method's result."""


TaskResult: TypeAlias = (
    SandboxEntryResult
    | EachResult
    | ShutdownResult
    | CodeResult
    | CommandResult
    | TransferResult
    | UrlResult
    | PortResult
    | CancelResult
    | LanesResult
    | AccountListResult
    | TimeoutResult
    | PauseResult
    | ResumeResult
    | ForkResult
    | SnapshotResult
    | SnapshotListResult
    | SnapshotDeleteResult
)
"""Any task's result when its operation succeeded (a task may also return an ErrorResult)."""
