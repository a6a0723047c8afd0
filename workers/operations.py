"""What the tasks do, against the sandbox provider through the async e2b SDK.

Each operation is a coroutine that runs on the worker's SDK loop: it takes its task's arguments
(``e2bq.protocol``) and returns its task's result, or raises an e2bq or SDK error (the runner turns
that into an ErrorResult). When it runs for a background job, ``ctx.job_id`` is set: it records the
process id and output tail in the job store, and, if cancelled, stops its work inside the sandbox
before it ends. ``ctx.deadline.work`` is the bound it gives the SDK (None: none, as for a job).
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import time
from dataclasses import dataclass

from e2b.exceptions import RateLimitException, SandboxException
from e2b.sandbox.commands.command_handle import CommandExitException
from e2b_code_interpreter import AsyncSandbox

from e2bq.config import Settings
from e2bq.errors import JobNotFoundError, ProviderError
from e2bq.protocol import (
    NO_DEADLINE,
    CancelJobArgs,
    ConnectSandboxArgs,
    CreateSandboxArgs,
    Deadline,
    KillSandboxArgs,
    PublicUrlArgs,
    RunCodeArgs,
    RunCommandArgs,
    WaitForPortArgs,
    check_port,
)
from e2bq.stores.jobs import JobStore
from e2bq.stores.nodes import NodeStore, Placement
from e2bq.stores.registry import Registry
from e2bq.stores.shaping import CreationShaper
from e2bq.stores.shutdowns import Shutdowns
from e2bq.types import (
    CancelResult,
    CodeResult,
    CommandResult,
    JobRecord,
    OutputStream,
    PortResult,
    SandboxEntry,
    SandboxEntryResult,
    ShutdownResult,
    UrlResult,
)

from . import jobwork
from .loop import SdkLoop
from .output import OutputTail
from .results import command_dict, execution_dict
from .translate import translate

_CREATE_RETRIES = 6


@dataclass
class Context:
    settings: Settings
    loop: SdkLoop
    jobs: JobStore
    registry: Registry
    shutdowns: Shutdowns
    job_id: str | None = None
    deadline: Deadline = NO_DEADLINE
    worker: str = ""  # the Celery worker running the task (its heartbeats name it)
    tail: OutputTail | None = None  # a job's output, on its way to the job store
    leaving: bool = False  # the worker stops and hands the job over: its work must stay running

    def leave(self) -> None:
        self.leaving = True

    def output(self, text: str, stream: OutputStream = "stdout") -> None:
        if self.tail is not None:
            self.tail.add(text, stream)

    def error_output(self, text: str) -> None:
        self.output(text, "stderr")


async def create_sandbox(ctx: Context, args: CreateSandboxArgs) -> SandboxEntryResult:
    """Create a sandbox within the provider's shared budget (waiting for it, not failing), and
    record it with this worker's node; settle the node's slot the client reserved for it."""
    shaper = CreationShaper(ctx.settings, ctx.registry.redis)
    reservation = await shaper.acquire(args.get("create_wait")) if shaper.active else None
    sandbox_id: str | None = None
    now = time.time()
    lifetime = args["timeout"]
    placed = args.get("placement")
    try:
        sandbox = await _create_with_retries(ctx, args)
        sandbox_id = sandbox.sandbox_id
    finally:
        if reservation is not None:
            shaper.settle(reservation, sandbox_id, now + lifetime)
        if placed is not None:
            NodeStore(ctx.settings, ctx.registry.redis).settle(
                Placement(node=placed["node"], url="", reservation=placed["reservation"]),
                made=sandbox_id is not None,
            )
    local = ctx.settings.provider == "local"
    try:
        started_at = await host_started_at(ctx) if local else None
    except BaseException:  # cancelled once the sandbox exists: it must not outlive its create
        with contextlib.suppress(Exception):
            await asyncio.shield(AsyncSandbox.kill(sandbox.sandbox_id, **ctx.settings.sdk_options()))
        raise
    entry: SandboxEntry = {
        "sandbox_id": sandbox.sandbox_id,
        "provider": ctx.settings.provider,
        "namespace": args["namespace"],
        "template": str(args["options"].get("template") or "code-interpreter-v1"),
        "metadata": args["metadata"],
        "created_at": now,
        "expires_at": now + lifetime,
        "is_default": args["set_default"],
        "node": ctx.settings.node if local else None,
        "node_url": ctx.settings.node_address if local else None,
        "node_started_at": started_at,
    }
    ctx.registry.add(entry)
    if args["set_default"]:
        ctx.registry.set_default(args["namespace"], sandbox.sandbox_id)
    return {"status": "success", "sandbox_id": sandbox.sandbox_id, "result": entry}


async def host_started_at(ctx: Context) -> float | None:
    """When the run of this worker's sandbox host that made a sandbox began, asked of the host
    itself (a heartbeat may be older than a restart)."""
    try:
        answer = await ctx.loop.http.get(f"{ctx.settings.e2b_api_url}/health")
        return float(answer.json()["started_at"])
    except Exception:  # an older host, or it went away meanwhile: the sandbox is not dated
        return None


async def _create_with_retries(ctx: Context, args: CreateSandboxArgs) -> AsyncSandbox:
    """The SDK's create, retried with backoff when the provider answers 429 anyway."""
    for attempt in range(_CREATE_RETRIES):
        try:
            return await AsyncSandbox.create(
                timeout=args["timeout"],
                metadata=args["metadata"],
                **args["options"],
                **ctx.settings.sdk_options(),
            )
        except RateLimitException:
            if attempt == _CREATE_RETRIES - 1:
                raise
            await asyncio.sleep(min(30.0, 2.0**attempt))
    raise AssertionError("unreachable")


async def connect_sandbox(ctx: Context, args: ConnectSandboxArgs) -> SandboxEntryResult:
    """Check a sandbox is alive; adopt it into the namespace's registry if it is not there yet."""
    sandbox_id = args["sandbox_id"]
    entry = ctx.registry.get(sandbox_id)
    sandbox = await ctx.loop.sandbox(sandbox_id)
    info = await sandbox.get_info()
    if entry is None:
        entry = {
            "sandbox_id": sandbox_id,
            "provider": ctx.settings.provider,
            "namespace": args["namespace"],
            "template": str(info.template_id),
            "metadata": dict(info.metadata or {}),
            "created_at": info.started_at.timestamp(),
            "expires_at": info.end_at.timestamp(),
            "is_default": False,
            "node": ctx.settings.node if ctx.settings.provider == "local" else None,
            "node_url": ctx.settings.node_address if ctx.settings.provider == "local" else None,
        }
        ctx.registry.add(entry)
    return {"status": "success", "sandbox_id": sandbox_id, "result": entry}


async def kill_sandbox(ctx: Context, args: KillSandboxArgs) -> ShutdownResult:
    sandbox_id = args["sandbox_id"]
    killed = await AsyncSandbox.kill(sandbox_id, **ctx.settings.sdk_options())
    ctx.registry.remove(sandbox_id, shut_down=True)
    ctx.loop.forget(sandbox_id)
    return {"status": "success", "sandbox_id": sandbox_id, "result": bool(killed)}


async def run_code(ctx: Context, args: RunCodeArgs) -> CodeResult:
    sandbox_id = args["sandbox_id"]
    sandbox = await ctx.loop.sandbox(sandbox_id)
    if ctx.job_id is not None:
        return execution_dict(await jobwork.code_job(ctx, sandbox, args), sandbox_id, ctx.job_id)
    execution = await sandbox.run_code(
        args["code"],
        timeout=_sdk_timeout(ctx),
    )
    return execution_dict(execution, sandbox_id, None)


async def run_command(ctx: Context, args: RunCommandArgs) -> CommandResult:
    """Run a command to its end: in the foreground for a synchronous call, or for a job."""
    sandbox_id, command = args["sandbox_id"], args["command"]
    sandbox = await ctx.loop.sandbox(sandbox_id)
    if ctx.job_id is None:
        try:
            outcome = await sandbox.commands.run(command, timeout=_sdk_timeout(ctx))
        except CommandExitException as exc:
            outcome = exc
        return command_dict(outcome, sandbox_id)
    handle = await jobwork.command_job(ctx, sandbox, args)
    ctx.jobs.set_pid(ctx.job_id, handle.pid)
    try:
        outcome = await handle.wait()
    except CommandExitException as exc:
        outcome = exc
    except BaseException:  # cancelled, or the stream broke: the process must not outlive its job
        if not ctx.leaving:  # (unless the job is handed over to another worker)
            with contextlib.suppress(Exception):
                await asyncio.shield(sandbox.commands.kill(handle.pid))
        raise
    return command_dict(outcome, sandbox_id, ctx.job_id, pid=handle.pid)


def _sdk_timeout(ctx: Context) -> float:
    """The deadline's bound for the SDK; 0 tells the SDK "none" (a background job runs until it
    ends or is killed)."""
    return ctx.deadline.work if ctx.deadline.work is not None else 0


async def kill_process(ctx: Context, *, sandbox_id: str, pid: int) -> bool:
    sandbox = await ctx.loop.sandbox(sandbox_id)
    return bool(await sandbox.commands.kill(pid))


async def public_url(ctx: Context, args: PublicUrlArgs) -> UrlResult:
    """A URL the client's machine can open for ``port`` in the sandbox."""
    sandbox_id, port = args["sandbox_id"], check_port(args["port"])
    sandbox = await ctx.loop.sandbox(sandbox_id)
    if ctx.settings.provider == "e2b":
        url = f"https://{sandbox.get_host(port)}"
    else:
        answer = await ctx.loop.http.get(
            f"{ctx.settings.e2b_api_url}/sandboxes/{sandbox_id}/ports/{port}",
            headers={"X-API-KEY": ctx.settings.e2b_api_key or ""},
        )
        if answer.status_code != 200:
            raise ProviderError(f"the sandbox host could not publish port {port}: {answer.text}")
        url = str(answer.json()["url"])
    return {"status": "success", "sandbox_id": sandbox_id, "port": port, "url": url}


async def wait_for_port(ctx: Context, args: WaitForPortArgs) -> PortResult:
    """Wait until something in the sandbox accepts connections on ``port`` (at most wait_seconds)."""
    sandbox_id, port, wait_seconds = args["sandbox_id"], check_port(args["port"]), args["wait_seconds"]
    sandbox = await ctx.loop.sandbox(sandbox_id)
    probe = f"bash -c {shlex.quote(f'exec 3<>/dev/tcp/127.0.0.1/{port}')} 2>/dev/null"
    deadline = time.monotonic() + max(0.0, wait_seconds)
    while True:
        try:
            await sandbox.commands.run(probe, timeout=10)
            ready = True
        except CommandExitException:
            ready = False
        except SandboxException as exc:
            raise translate(exc, sandbox_id) from exc
        if ready or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.1)
    url = await public_url(ctx, PublicUrlArgs(sandbox_id=sandbox_id, port=port))
    result: PortResult = {**url, "result": ready}
    if not ready:
        result["message"] = f"nothing accepted connections on port {port} within {wait_seconds:g} s"
    return result


async def cancel_job(ctx: Context, args: CancelJobArgs) -> CancelResult:
    """Stop a cancelled job's process in its sandbox, wherever the job's worker is (or was)."""
    job_id = args["job_id"]
    record = ctx.jobs.get(job_id)
    if record is None:
        raise JobNotFoundError(f"job {job_id} not found: its record expired (E2BQ_JOB_TTL) or never existed")
    killed = False
    with contextlib.suppress(Exception):  # the sandbox, or the work, is gone already
        killed = await _stop_job_work(ctx, record)
    return {"status": "success", "job_id": job_id, "result": killed}


async def _stop_job_work(ctx: Context, record: JobRecord) -> bool:
    """Stop what the job runs in its sandbox: its command's process (found by pid, or by its job
    id when its worker was lost before it recorded the pid), or its code's keyed execution."""
    sandbox_id, job_id = record["sandbox_id"], record["job_id"]
    if record["kind"] == "code":
        if ctx.settings.provider != "local":
            return False  # its worker's watch interrupts the cell; nothing outlives the worker
        return await jobwork.stop_code_job(ctx, await ctx.loop.sandbox(sandbox_id), job_id)
    pid = record["pid"]
    if not pid:
        sandbox = await ctx.loop.sandbox(sandbox_id)
        found = [p.pid for p in await sandbox.commands.list() if p.envs.get(jobwork.JOB_ENV) == job_id]
        pid = found[0] if found else None
    return bool(pid) and await kill_process(ctx, sandbox_id=sandbox_id, pid=int(pid or 0))
