"""Every dict that crosses a boundary: toolkit results, task results, job records, registry entries.

Each toolkit method returns its own result type or an :class:`ErrorResult` (``CodeResult |
ErrorResult`` for ``run_python_code``); ``ToolResult`` is the union of them all. Workers return the
task results named beside each task in :mod:`e2bq.protocol`. Every result has ``status`` and may
carry a ``message`` (an error's reason, or a note such as "the default sandbox was replaced").

Values are JSON-native (str, int, float, bool, None, list, dict); JSON encoding happens once, at
the edge (Celery's JSON serializer, the Redis stores).
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypeAlias, TypedDict, final

Status = Literal["success", "error", "accepted"]
JobStatus = Literal["running", "done", "error", "cancelled", "not_found"]
"""What ``get_job_status`` reports: a job's record status, or ``not_found``."""
JobRecordStatus = Literal["running", "done", "error", "cancelled"]
JobState = Literal["queued", "started", "handed_over"]
JobKind = Literal["code", "command", "server", "map"]
Provider = Literal["e2b", "local"]
NodeState = Literal["live", "lost"]
SandboxState = Literal["running", "lost"]
OutputStream = Literal["stdout", "stderr"]
OUTPUT_STREAMS: tuple[OutputStream, ...] = ("stdout", "stderr")

TERMINAL_STATES: frozenset[str] = frozenset({"done", "error", "cancelled"})


# -- what results are made of --------------------------------------------------------------------


class ErrorInfo(TypedDict):
    """Code that raised: E2B's ExecutionError."""

    name: str
    value: str
    traceback: str


class Logs(TypedDict):
    stdout: list[str]
    stderr: list[str]


class ExecutionResult(TypedDict, total=False):
    """One display or main result of a cell: E2B's Result, MIME fields by name."""

    text: str
    html: str
    markdown: str
    svg: str
    png: str
    jpeg: str
    pdf: str
    latex: str
    json: Any
    javascript: str
    data: Any
    chart: dict[str, Any]
    extra: dict[str, Any]
    is_main_result: bool


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


class ToolSpec(TypedDict):
    """A toolkit method as an LLM function-calling tool: its name, description and JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any]


# -- results -------------------------------------------------------------------------------------


class _Result(TypedDict):
    message: NotRequired[str]


@final
class ErrorResult(TypedDict):
    """Any call that failed: ``message`` says why and what to change."""

    status: Literal["error"]
    message: str
    error_type: NotRequired[str]  # the e2bq error's class, when a worker reports it
    sandbox_id: NotRequired[str]
    job_id: NotRequired[str]


class AcceptedResult(_Result):
    """A background job was queued: follow it with get_job_status, stop it with kill_job."""

    status: Literal["accepted"]
    job_id: str
    sandbox_id: str


class CodeResult(_Result):
    """run_python_code: ``error`` status when the code raised (``error`` says how)."""

    status: Literal["success", "error"]
    sandbox_id: str
    results: list[ExecutionResult]
    logs: Logs
    error: ErrorInfo | None
    execution_count: int | None
    job_id: NotRequired[str]


class CommandResult(_Result):
    """run_command: ``error`` status when the command exited non-zero."""

    status: Literal["success", "error"]
    sandbox_id: str
    stdout: str
    stderr: str
    exit_code: int
    output: NotRequired[CommandOutput]  # the toolkit's: stdout and stderr again, nested as in agno's E2BTools
    pid: NotRequired[int]  # a background command's process id
    job_id: NotRequired[str]


class CommandOutput(TypedDict):
    stdout: str
    stderr: str


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


class ChartImage(TypedDict):
    image_id: str
    file_url: str
    path: str


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


class JobListResult(TypedDict):
    """list_jobs: the namespace's newest jobs first."""

    status: Literal["success"]
    namespace: str
    jobs: list[JobSummary]
    count: int


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


class MapAcceptedResult(_Result):
    """map_python_code: the batch map was queued as job ``job_id`` of ``total`` items."""

    status: Literal["accepted"]
    job_id: str
    total: int


class PendingItem(TypedDict):
    """get_job_results: an item of a running map that has not finished yet."""

    status: Literal["running"]
    index: int


MapItemResult: TypeAlias = CodeResult | ErrorResult
"""A finished item of a batch map: what run_python_code would have returned for it."""


class MapResults(_Result):
    """get_job_results: the items ``offset`` onwards of a map of ``total``, in input order."""

    status: Literal["success"]
    job_id: str
    offset: int
    total: int
    results: list[MapItemResult | PendingItem]


class MapProgress(TypedDict):
    """A batch map's counts as its store keeps them (``e2bq:map:<id>``)."""

    total: int
    done: int  # items that succeeded
    failed: int  # items whose result is an error
    lanes: int  # lanes not yet stopped


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


class ManagedSandbox(SandboxEntry):
    """A managed sandbox as list_managed_sandboxes lists it."""

    has_jobs: bool  # a background job of it is running now


class SandboxListResult(_Result):
    status: Literal["success"]
    sandboxes: list[ManagedSandbox]
    count: int
    default_sandbox_id: str | None


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


class ForcedShutdown(TypedDict):
    """One sandbox of force_shutdown_all: ``killed``, or ``error`` with a message."""

    status: Literal["killed", "error"]
    sandbox_id: str
    result: bool | None
    message: NotRequired[str]


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
)
"""Any task's result when its operation succeeded (a task may also return an ErrorResult)."""
