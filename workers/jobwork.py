"""A background job's work in its sandbox: started once per job, re-attached by a new worker.

A job outlives the worker that drives it. When that worker dies, another takes the job over (the
job store hands it over, ``e2bq.stores.jobs``) and runs the same task again with ``takeover`` set;
what it does then must not run the work a second time:

- A command carries its job's id in ``E2BQ_JOB_ID``. A takeover finds it among the sandbox's
  processes and follows it with the SDK's ``commands.connect`` by pid, on either provider, to its
  real exit code. A local sandbox host also starts a command at most once per job id and keeps
  the end of one that ended while no worker followed it, so starting it again there only picks
  it up. On E2B's cloud a command that ended meanwhile has left no exit code: the job says so.
- Code on a local sandbox host runs as a keyed execution (``POST /e2bq/executions``, an e2bq
  extension of the code interpreter's API): it keeps running when its worker goes, and the new
  worker's request with the same key gets its lines again and then the rest. On E2B's cloud a cell
  cannot be re-attached: a takeover of code that had started ends the job with an error that says
  so; code that never started is simply run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
from e2b import AsyncCommandHandle
from e2b_code_interpreter import AsyncSandbox
from e2b_code_interpreter.models import Execution, OutputMessage, async_parse_output

from e2bq.errors import ProviderError, SandboxNotFoundError
from e2bq.protocol import RunCodeArgs, RunCommandArgs
from e2bq.types import OutputStream

if TYPE_CHECKING:
    from .operations import Context

JOB_ENV = "E2BQ_JOB_ID"  # the variable a job's command carries (sandboxd's agent knows it too)
INTERPRETER_PORT = 49999
_CLOUD_CELL = (
    "the job's worker was lost while its code ran, and E2B's cloud cannot re-attach to a running "
    "cell: its outcome is unknown (run it again if that is safe)"
)
_CLOUD_ENDED = (
    "the job's worker was lost, and its command ended while no worker followed it: E2B's cloud "
    "keeps no exit code of an ended command, so its outcome is unknown"
)


def _may_have_started(ctx: Context) -> bool:
    """Whether this takeover's job may have started its work before its worker was lost."""
    record = ctx.jobs.get(str(ctx.job_id))
    return record is not None and record.get("handed_from") == "started"


async def command_job(
    ctx: Context, sandbox: AsyncSandbox, args: RunCommandArgs
) -> AsyncCommandHandle[str | None]:
    """The job's command process, started now or, for a takeover, the one already running."""
    job_id = str(ctx.job_id)
    if args.get("takeover"):
        for process in await sandbox.commands.list():
            if process.envs.get(JOB_ENV) == job_id:
                followed: AsyncCommandHandle[str | None] = await sandbox.commands.connect(
                    process.pid, timeout=0, on_stdout=ctx.output, on_stderr=ctx.error_output
                )
                return followed
        if ctx.settings.provider != "local" and _may_have_started(ctx):
            raise ProviderError(_CLOUD_ENDED)
    started: AsyncCommandHandle[str | None] = await sandbox.commands.run(
        args["command"],
        background=True,
        envs={JOB_ENV: job_id},
        timeout=0,
        on_stdout=ctx.output,
        on_stderr=ctx.error_output,
    )
    return started


async def code_job(ctx: Context, sandbox: AsyncSandbox, args: RunCodeArgs) -> Execution:
    """Run the job's code, or re-attach to it when it already runs (see the module's docstring)."""
    if ctx.settings.provider != "local":
        if args.get("takeover") and _may_have_started(ctx):
            raise ProviderError(_CLOUD_CELL)
        return await sandbox.run_code(
            args["code"], timeout=0, on_stdout=_line(ctx, "stdout"), on_stderr=_line(ctx, "stderr")
        )
    try:
        if args.get("takeover") and ctx.tail is not None:
            ctx.tail.skip_written()  # its lines come again from the start: the lost worker wrote some
        return await _keyed_execution(ctx, sandbox, args["code"])
    except asyncio.CancelledError:  # kill_job, or a deadline: the cell stops too
        if not ctx.leaving:  # (unless the job is handed over to another worker)
            with contextlib.suppress(Exception):
                await asyncio.shield(stop_code_job(ctx, sandbox, str(ctx.job_id)))
        raise


async def _keyed_execution(ctx: Context, sandbox: AsyncSandbox, code: str) -> Execution:
    execution = Execution()
    body = {"key": str(ctx.job_id), "code": code}
    async with ctx.loop.http.stream(
        "POST",
        _interpreter_url(sandbox) + "/e2bq/executions",
        json=body,
        headers=_headers(sandbox),
        timeout=httpx.Timeout(None, connect=10),
    ) as answer:
        if answer.status_code != 200:
            raise _answer_error(sandbox.sandbox_id, answer.status_code, (await answer.aread()).decode())
        async for line in answer.aiter_lines():
            if line:
                await async_parse_output(
                    execution, line, on_stdout=_line(ctx, "stdout"), on_stderr=_line(ctx, "stderr")
                )
    return execution


async def stop_code_job(ctx: Context, sandbox: AsyncSandbox, job_id: str) -> bool:
    """Interrupt the job's keyed execution on a local sandbox host; False if it has none."""
    answer = await ctx.loop.http.delete(
        f"{_interpreter_url(sandbox)}/e2bq/executions/{job_id}", headers=_headers(sandbox)
    )
    return answer.status_code == 204


def _line(ctx: Context, stream: OutputStream) -> Callable[[OutputMessage], None]:
    return lambda message: ctx.output(message.line, stream)


def _interpreter_url(sandbox: AsyncSandbox) -> str:
    config = sandbox.connection_config
    return str(config.get_sandbox_url(sandbox.sandbox_id, sandbox.sandbox_domain, port=INTERPRETER_PORT))


def _headers(sandbox: AsyncSandbox) -> dict[str, str]:
    headers = {"E2b-Sandbox-Id": sandbox.sandbox_id, "E2b-Sandbox-Port": str(INTERPRETER_PORT)}
    token: Any = getattr(sandbox, "_envd_access_token", None)  # the SDK keeps it private
    if token:
        headers["X-Access-Token"] = str(token)
    return headers


def _answer_error(sandbox_id: str, status: int, body: str) -> Exception:
    if status in (404, 502) and "not found" in body.lower():
        return SandboxNotFoundError(f"sandbox {sandbox_id} was not found (killed, expired, or never made)")
    return ProviderError(f"the sandbox host refused the job's code ({status}): {body[:500]}")
