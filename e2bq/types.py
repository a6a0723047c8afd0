"""Every dict that crosses a boundary (toolkit results, task results, job records, registry entries).

Values are JSON-native (str, int, float, bool, None, list, dict); JSON encoding happens once, at
the edge (Celery's JSON serializer, the Redis job store).
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

Status = Literal["success", "error", "accepted"]
JobStatus = Literal["running", "done", "error", "cancelled", "not_found"]
JobState = Literal["queued", "started"]
JobKind = Literal["code", "command", "server"]
Provider = Literal["e2b", "local"]

TERMINAL_STATES: frozenset[str] = frozenset({"done", "error", "cancelled"})


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


class ToolResult(TypedDict, total=False):
    """What every public toolkit method returns. ``status`` is always present."""

    status: Status
    message: str
    error_type: str
    sandbox_id: str
    job_id: str
    # code
    results: list[ExecutionResult]
    logs: Logs
    error: ErrorInfo | None
    execution_count: int | None
    # commands
    stdout: str
    stderr: str
    exit_code: int
    pid: int
    # files, servers, sandboxes
    path: str
    local_path: str
    sandbox_path: str
    size: int
    url: str
    port: int
    result: Any
    sandboxes: list[SandboxEntry]
    default_sandbox_id: str | None
    truncated: bool


class JobRecord(TypedDict, total=False):
    """A job as the job store keeps it in Redis (``e2bq:job:<id>``)."""

    job_id: str
    status: JobStatus
    state: JobState
    kind: JobKind
    sandbox_id: str
    namespace: str
    task_id: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    worker: str | None
    pid: int | None
    message: str
    result: ToolResult | None
    output: str


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
