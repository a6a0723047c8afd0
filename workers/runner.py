"""How every task runs an operation: job bookkeeping, cancellation, deadlines, error results.

A task's result is always a ToolResult: a bad input or a provider failure becomes
``{"status": "error", "message": ...}``; a bug in e2bq is logged with its traceback first.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from celery import Task
from celery.exceptions import Ignore

from e2bq.config import Settings
from e2bq.errors import E2BQError, JobCancelledError, SandboxNotFoundError
from e2bq.stores.jobs import JobStore
from e2bq.stores.registry import Registry
from e2bq.stores.shutdowns import Shutdowns
from e2bq.types import ToolResult

from .loop import SdkLoop
from .operations import Context
from .translate import translate
from .watch import Watch

log = logging.getLogger("e2bq.worker")

Operation = Callable[..., Coroutine[Any, Any, ToolResult]]
_DEADLINE_MARGIN = 5.0  # seconds beyond an operation's own timeout before the worker stops it


@functools.cache
def _process_context() -> Context:
    """This process's settings, stores and SDK loop, made on first use (after Celery's fork)."""
    settings = Settings.from_env()
    jobs = JobStore(settings)
    registry, shutdowns = Registry(settings, jobs.redis), Shutdowns(settings, jobs.redis)
    return Context(settings, SdkLoop(settings), jobs, registry, shutdowns)


def close_process_context() -> None:
    """Wind down this process's SDK loop, if it made one (see ``SdkLoop.close``)."""
    if _process_context.cache_info().currsize:
        _process_context().loop.close()


def run_operation(
    task: Task,
    operation: Operation,
    *,
    job: bool = False,
    deadline: float | None = None,
    **kwargs: Any,
) -> ToolResult:
    """Run ``operation(ctx, **kwargs)`` for ``task``.

    With ``job``, it runs as a background job: recorded in the job store, stopped by kill_job.
    ``deadline`` (seconds) is the operation's own time bound; the worker stops it a little after.
    """
    base = _process_context()
    job_id = task.request.id if job else None
    ctx = Context(base.settings, base.loop, base.jobs, base.registry, base.shutdowns, job_id)
    if job_id and not ctx.jobs.start(job_id, worker=str(task.request.hostname)):
        if not ctx.jobs.is_cancelled(job_id):
            # Its message came twice (Redis redelivers past the visibility timeout): the delivery
            # that claimed the job runs it and reports; this one leaves no trace.
            raise Ignore()
        return {"status": "error", "job_id": job_id, "message": "the job was cancelled before it ran"}
    sandbox_id = kwargs.get("sandbox_id")
    watch = Watch(
        jobs=ctx.jobs, registry=ctx.registry, shutdowns=ctx.shutdowns, loop=ctx.loop,
        worker=str(task.request.hostname), job_id=job_id,
        sandbox_id=sandbox_id if operation.__name__ != "kill_sandbox" else None,
    )
    if watch.sandbox_id and deadline is not None:
        watch.keep_alive(deadline + _DEADLINE_MARGIN)
    try:
        result = ctx.loop.run(
            operation(ctx, **kwargs),
            stop=watch,
            timeout=None if deadline is None else deadline + _DEADLINE_MARGIN,
        )
    except JobCancelledError as exc:
        return {"status": "error", "job_id": str(job_id), "message": str(exc)}
    except Exception as exc:
        if not isinstance(exc, E2BQError) and not _is_sdk_error(exc):
            log.exception("task %s failed", task.name)
        error = translate(exc, sandbox_id)
        if sandbox_id and isinstance(error, SandboxNotFoundError):
            ctx.loop.forget(sandbox_id)
            ctx.registry.remove(sandbox_id)  # the registry follows the sandbox's life
        result = {"status": "error", "message": str(error), "error_type": type(error).__name__}
        if sandbox_id:
            result["sandbox_id"] = sandbox_id
    if job_id:
        result["job_id"] = job_id
        ctx.jobs.finish(
            job_id, "done" if result["status"] == "success" else "error", result, result.get("message", "")
        )
    return result


def _is_sdk_error(exc: Exception) -> bool:
    return type(exc).__module__.startswith(("e2b", "httpx", "httpcore"))
