"""SDK objects to e2bq's JSON-safe dicts, field by field (``Execution.to_json`` double-encodes)."""

from __future__ import annotations

from typing import Any, cast

from e2bq.types import CodeResult, CommandResult, ErrorInfo, ExecutionResult

_MIME_FIELDS = (
    "text",
    "html",
    "markdown",
    "svg",
    "png",
    "jpeg",
    "pdf",
    "latex",
    "json",
    "javascript",
    "data",
)


def result_dict(result: Any) -> ExecutionResult:
    out: dict[str, Any] = {"is_main_result": bool(getattr(result, "is_main_result", False))}
    for name in _MIME_FIELDS:
        value = getattr(result, name, None)
        if value is not None:
            out[name] = value
    chart = getattr(result, "chart", None)
    if chart is not None:
        out["chart"] = chart.to_dict() if hasattr(chart, "to_dict") else dict(chart)
    extra = getattr(result, "extra", None)
    if extra:
        out["extra"] = dict(extra)
    return cast(ExecutionResult, out)  # the MIME fields copied by name above


def error_dict(error: Any) -> ErrorInfo:
    return {"name": str(error.name), "value": str(error.value), "traceback": str(error.traceback)}


def execution_dict(execution: Any, sandbox_id: str, job_id: str | None = None) -> CodeResult:
    """An ``Execution`` as a toolkit result: ``error`` status when the code raised."""
    error = error_dict(execution.error) if execution.error else None
    result: CodeResult = {
        "status": "error" if error else "success",
        "sandbox_id": sandbox_id,
        "results": [result_dict(r) for r in execution.results],
        "logs": {"stdout": list(execution.logs.stdout), "stderr": list(execution.logs.stderr)},
        "error": error,
        "execution_count": execution.execution_count,
    }
    if error:
        result["message"] = f"{error['name']}: {error['value']}"
    if job_id:
        result["job_id"] = job_id
    return result


def command_dict(
    outcome: Any, sandbox_id: str, job_id: str | None = None, *, pid: int | None = None
) -> CommandResult:
    """A ``CommandResult`` (or ``CommandExitException``) as a toolkit result (``pid``: a background
    command's process)."""
    exit_code = int(outcome.exit_code)
    result: CommandResult = {
        "status": "success" if exit_code == 0 else "error",
        "sandbox_id": sandbox_id,
        "stdout": outcome.stdout,
        "stderr": outcome.stderr,
        "exit_code": exit_code,
    }
    if exit_code != 0:
        detail = f": {outcome.error}" if getattr(outcome, "error", None) else ""
        result["message"] = f"the command exited with code {exit_code}{detail}"
    if pid is not None:
        result["pid"] = pid
    if job_id:
        result["job_id"] = job_id
    return result
