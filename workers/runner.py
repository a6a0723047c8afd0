"""How every task runs its operation: job bookkeeping, cancellation, deadlines, error results.

A task returns its operation's result or an ErrorResult: a bad input or a provider failure becomes
``{"status": "error", "message": ...}``; a bug in e2bq is logged with its traceback first.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

from celery import Task
from celery.exceptions import Ignore

from e2bq.config import Settings
from e2bq.errors import (
    E2BQError,
    JobCancelledError,
    JobTakenOverError,
    SandboxNotFoundError,
    SandboxPausedError,
    WorkerStoppedError,
)
from e2bq.protocol import (
    KILL_SANDBOX,
    PAUSE_SANDBOX,
    RESUME_SANDBOX,
    RUN_CODE,
    RUN_COMMAND,
    ResumeSandboxArgs,
    deadline,
    is_job,
)
from e2bq.stores.jobs import JobStore
from e2bq.stores.registry import Registry
from e2bq.stores.shutdowns import Shutdowns
from e2bq.types import ErrorResult, JobRecordStatus, TaskResult

from . import lifecycle
from .loop import SdkLoop
from .operations import Context
from .output import OutputTail
from .takeover import send_again
from .translate import translate
from .watch import Watch

log = logging.getLogger("e2bq.worker")

A = TypeVar("A", bound=Mapping[str, object])
R = TypeVar("R", bound=TaskResult)
Operation = Callable[[Context, A], Coroutine[Any, Any, R]]


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


def run_operation(task: Task, operation: Operation[A, R], args: A) -> R | ErrorResult:
    """Run ``operation(ctx, args)`` for ``task``, within the protocol's deadline for it.

    With ``job`` in ``args``, it runs as a background job: claimed and recorded in the job store,
    stopped by kill_job, and its outcome recorded there too.
    """
    base = _process_context()
    job_id = str(task.request.id) if is_job(args) else None
    bounds = deadline(str(task.name), args, base.settings)
    worker = str(task.request.hostname)
    tail = OutputTail(base.jobs, job_id) if job_id else None
    ctx = Context(
        base.settings, base.loop, base.jobs, base.registry, base.shutdowns, job_id, bounds, worker, tail
    )
    if job_id and not ctx.jobs.start(job_id, worker=worker, takeover="takeover" in args):
        if not ctx.jobs.is_cancelled(job_id):
            # Its message came twice (Redis redelivers past the visibility timeout): the delivery
            # that claimed the job runs it and reports; this one leaves no trace.
            raise Ignore()
        return {"status": "error", "job_id": job_id, "message": "the job was cancelled before it ran"}
    sandbox_id = args.get("sandbox_id")
    sandbox_id = sandbox_id if isinstance(sandbox_id, str) else None
    watch = Watch(
        jobs=ctx.jobs, registry=ctx.registry, shutdowns=ctx.shutdowns, loop=ctx.loop, worker=worker,
        job_id=job_id, sandbox_id=sandbox_id if task.name != KILL_SANDBOX else None, tail=tail,
        leave=ctx.leave if job_id and _outlives_worker(str(task.name), ctx.settings) else None,
    )
    if watch.sandbox_id and bounds.stop is not None:
        watch.keep_alive(bounds.stop)
    result: R | ErrorResult
    try:
        running = on_running(ctx, str(task.name), operation, args, sandbox_id)
        result = ctx.loop.run(running, stop=watch, timeout=bounds.stop)
    except (JobCancelledError, JobTakenOverError) as exc:  # ended by kill_job, or driven elsewhere
        return {"status": "error", "job_id": str(job_id), "message": str(exc)}
    except Exception as exc:
        if isinstance(exc, WorkerStoppedError) and ctx.leaving and job_id and _hand_over(task, ctx, job_id):
            return {"status": "error", "job_id": job_id, "message": f"{exc}; another worker takes it over"}
        result = error_result(str(task.name), exc, sandbox_id, ctx)
        if job_id:
            result["job_id"] = job_id
    finally:
        if tail is not None:
            tail.flush()  # the whole output is recorded before the job's end is
    if job_id:
        _finish_job(ctx, job_id, result)
    return result


# the tasks that take a paused sandbox as it is (the others resume it first)
_PAUSE_AS_IS = frozenset({KILL_SANDBOX, PAUSE_SANDBOX, RESUME_SANDBOX})


async def on_running(
    ctx: Context, task: str, operation: Operation[A, R], args: A, sandbox_id: str | None
) -> R:
    """``operation(ctx, args)`` on a running sandbox: a paused one is resumed first, as E2B's
    ``Sandbox.connect`` does. The registry says which are paused through e2bq; one paused
    elsewhere (the SDK's pause, ``on_timeout: pause``) is found by its refusal, which came before
    anything ran, so the call is made again once — but not a background job's, whose work may
    have begun before a later request was refused."""
    if sandbox_id is None or task in _PAUSE_AS_IS:
        return await operation(ctx, args)
    await lifecycle.resumed(ctx, sandbox_id)
    if ctx.job_id is not None:
        return await operation(ctx, args)
    try:
        return await operation(ctx, args)
    except Exception as exc:
        if not isinstance(translate(exc, sandbox_id), SandboxPausedError):
            raise
    await lifecycle.resume_sandbox(ctx, ResumeSandboxArgs(sandbox_id=sandbox_id, timeout=None))
    return await operation(ctx, args)


def _outlives_worker(task: str, settings: Settings) -> bool:
    """Whether this task's job can be left running for another worker to take over (a command;
    code on a local sandbox host, where a cell can be re-attached)."""
    return task == RUN_COMMAND or (task == RUN_CODE and settings.provider == "local")


def _hand_over(task: Task, ctx: Context, job_id: str) -> bool:
    """Give this stopping worker's job to another worker, its work left running; False if it
    could not be (cancelled or ended meanwhile, or its takeovers are spent)."""
    if ctx.tail is not None:
        ctx.tail.flush()  # this worker's output first, then the next worker's
    number = ctx.jobs.give_up(job_id, ctx.worker)
    if number > 0:
        send_again(task.app, ctx.jobs, ctx.settings, job_id, number)
    return number > 0


def _finish_job(ctx: Context, job_id: str, result: TaskResult | ErrorResult) -> None:
    """Record the job's outcome: ``done`` if its work succeeded, else ``error``, with its result."""
    ended: JobRecordStatus = "done" if result["status"] == "success" else "error"
    ctx.jobs.finish(job_id, ended, result, result.get("message", ""))


def error_result(task: str, exc: BaseException, sandbox_id: str | None, ctx: Context) -> ErrorResult:
    """The ErrorResult of ``task`` failing with ``exc`` (a bug in e2bq is logged first); a sandbox
    found gone is forgotten, here and in the registry."""
    if not isinstance(exc, E2BQError) and not _is_sdk_error(exc):
        log.error("task %s failed", task, exc_info=exc)
    error = translate(exc, sandbox_id)
    if sandbox_id and isinstance(error, SandboxNotFoundError):
        ctx.loop.forget(sandbox_id)
        ctx.registry.remove(sandbox_id)  # the registry follows the sandbox's life
    result: ErrorResult = {"status": "error", "message": str(error), "error_type": type(error).__name__}
    if sandbox_id:
        result["sandbox_id"] = sandbox_id
    return result


def _is_sdk_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith(("e2b", "httpx", "httpcore"))
