"""The tasks: thin adapters from a Celery message to one operation, registered under the
protocol's stable names. A message's kwargs are the task's argument TypedDict."""

from __future__ import annotations

from typing import Unpack

from celery import Task

from e2bq import callbacks, protocol
from e2bq.types import (
    AccountListResult,
    CancelResult,
    CodeResult,
    CommandResult,
    EachResult,
    ErrorResult,
    ForkResult,
    LanesResult,
    PauseResult,
    PortResult,
    ResumeResult,
    SandboxEntryResult,
    ShutdownResult,
    SnapshotDeleteResult,
    SnapshotListResult,
    SnapshotResult,
    TimeoutResult,
    TransferResult,
    UrlResult,
)

from . import batchmap, deliver, fanout, files, lifecycle, operations, sandboxes
from .app import app
from .runner import run_operation


@app.task(name=protocol.CREATE_SANDBOX, bind=True)
def create_sandbox(
    self: Task, **args: Unpack[protocol.CreateSandboxArgs]
) -> SandboxEntryResult | ErrorResult:
    return run_operation(self, operations.create_sandbox, args)


@app.task(name=protocol.CONNECT_SANDBOX, bind=True)
def connect_sandbox(
    self: Task, **args: Unpack[protocol.ConnectSandboxArgs]
) -> SandboxEntryResult | ErrorResult:
    return run_operation(self, operations.connect_sandbox, args)


@app.task(name=protocol.KILL_SANDBOX, bind=True)
def kill_sandbox(self: Task, **args: Unpack[protocol.KillSandboxArgs]) -> ShutdownResult | ErrorResult:
    return run_operation(self, operations.kill_sandbox, args)


@app.task(name=protocol.LIST_SANDBOXES, bind=True)
def list_sandboxes(self: Task, **args: Unpack[protocol.ListSandboxesArgs]) -> AccountListResult | ErrorResult:
    return run_operation(self, sandboxes.list_sandboxes, args)


@app.task(name=protocol.SET_SANDBOX_TIMEOUT, bind=True)
def set_sandbox_timeout(self: Task, **args: Unpack[protocol.SetTimeoutArgs]) -> TimeoutResult | ErrorResult:
    return run_operation(self, sandboxes.set_sandbox_timeout, args)


@app.task(name=protocol.PAUSE_SANDBOX, bind=True)
def pause_sandbox(self: Task, **args: Unpack[protocol.PauseSandboxArgs]) -> PauseResult | ErrorResult:
    return run_operation(self, lifecycle.pause_sandbox, args)


@app.task(name=protocol.RESUME_SANDBOX, bind=True)
def resume_sandbox(self: Task, **args: Unpack[protocol.ResumeSandboxArgs]) -> ResumeResult | ErrorResult:
    return run_operation(self, lifecycle.resume_sandbox, args)


@app.task(name=protocol.FORK_SANDBOX, bind=True)
def fork_sandbox(self: Task, **args: Unpack[protocol.ForkSandboxArgs]) -> ForkResult | ErrorResult:
    return run_operation(self, lifecycle.fork_sandbox, args)


@app.task(name=protocol.CREATE_SNAPSHOT, bind=True)
def create_snapshot(self: Task, **args: Unpack[protocol.CreateSnapshotArgs]) -> SnapshotResult | ErrorResult:
    return run_operation(self, lifecycle.create_snapshot, args)


@app.task(name=protocol.LIST_SNAPSHOTS, bind=True)
def list_snapshots(
    self: Task, **args: Unpack[protocol.ListSnapshotsArgs]
) -> SnapshotListResult | ErrorResult:
    return run_operation(self, lifecycle.list_snapshots, args)


@app.task(name=protocol.DELETE_SNAPSHOT, bind=True)
def delete_snapshot(
    self: Task, **args: Unpack[protocol.DeleteSnapshotArgs]
) -> SnapshotDeleteResult | ErrorResult:
    return run_operation(self, lifecycle.delete_snapshot, args)


@app.task(name=protocol.RUN_CODE, bind=True)
def run_code(self: Task, **args: Unpack[protocol.RunCodeArgs]) -> CodeResult | ErrorResult:
    return run_operation(self, operations.run_code, args)


@app.task(name=protocol.RUN_CODE_EACH, bind=True)
def run_code_each(self: Task, **args: Unpack[protocol.RunCodeEachArgs]) -> EachResult | ErrorResult:
    return run_operation(self, fanout.run_code_each, args)


@app.task(name=protocol.RUN_COMMAND, bind=True)
def run_command(self: Task, **args: Unpack[protocol.RunCommandArgs]) -> CommandResult | ErrorResult:
    return run_operation(self, operations.run_command, args)


@app.task(name=protocol.UPLOAD_FILE, bind=True)
def upload_file(self: Task, **args: Unpack[protocol.TransferArgs]) -> TransferResult | ErrorResult:
    return run_operation(self, files.upload_file, args)


@app.task(name=protocol.DOWNLOAD_FILE, bind=True)
def download_file(self: Task, **args: Unpack[protocol.TransferArgs]) -> TransferResult | ErrorResult:
    return run_operation(self, files.download_file, args)


@app.task(name=protocol.PUBLIC_URL, bind=True)
def public_url(self: Task, **args: Unpack[protocol.PublicUrlArgs]) -> UrlResult | ErrorResult:
    return run_operation(self, operations.public_url, args)


@app.task(name=protocol.WAIT_FOR_PORT, bind=True)
def wait_for_port(self: Task, **args: Unpack[protocol.WaitForPortArgs]) -> PortResult | ErrorResult:
    return run_operation(self, operations.wait_for_port, args)


@app.task(name=protocol.CANCEL_JOB, bind=True)
def cancel_job(self: Task, **args: Unpack[protocol.CancelJobArgs]) -> CancelResult | ErrorResult:
    return run_operation(self, operations.cancel_job, args)


@app.task(name=protocol.MAP_LANES, bind=True)
def map_lanes(self: Task, **args: Unpack[protocol.MapLanesArgs]) -> LanesResult | ErrorResult:
    return run_operation(self, batchmap.run_lanes, args)


@app.task(name=callbacks.DELIVER_JOB_END, ignore_result=True)
def deliver_job_end(job_id: str) -> str:
    return deliver.deliver_job_end(job_id, app.send_task)
