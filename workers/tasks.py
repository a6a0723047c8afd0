"""The tasks: thin adapters from a Celery message to one operation. Names are stable."""

from __future__ import annotations

from typing import Any

from celery import Task

from e2bq import celery_app as names
from e2bq.types import ToolResult

from . import files, operations
from .app import app
from .runner import run_operation


@app.task(name=names.CREATE_SANDBOX, bind=True)
def create_sandbox(
    self: Task,
    timeout: int,
    metadata: dict[str, str],
    namespace: str,
    set_default: bool = False,
    options: dict[str, Any] | None = None,
) -> ToolResult:
    return run_operation(
        self,
        operations.create_sandbox,
        timeout=timeout,
        metadata=metadata,
        namespace=namespace,
        set_default=set_default,
        options=options or {},
    )


@app.task(name=names.CONNECT_SANDBOX, bind=True)
def connect_sandbox(self: Task, sandbox_id: str, namespace: str) -> ToolResult:
    return run_operation(self, operations.connect_sandbox, sandbox_id=sandbox_id, namespace=namespace)


@app.task(name=names.KILL_SANDBOX, bind=True)
def kill_sandbox(self: Task, sandbox_id: str) -> ToolResult:
    return run_operation(self, operations.kill_sandbox, sandbox_id=sandbox_id)


@app.task(name=names.RUN_CODE, bind=True)
def run_code(
    self: Task, sandbox_id: str, code: str, timeout: float | None = None, job: bool = False
) -> ToolResult:
    return run_operation(
        self,
        operations.run_code,
        job=job,
        deadline=timeout,
        sandbox_id=sandbox_id,
        code=code,
        timeout=timeout,
    )


@app.task(name=names.RUN_COMMAND, bind=True)
def run_command(
    self: Task, sandbox_id: str, command: str, timeout: float | None = None, job: bool = False
) -> ToolResult:
    return run_operation(
        self,
        operations.run_command,
        job=job,
        deadline=None if job else timeout,
        sandbox_id=sandbox_id,
        command=command,
        timeout=timeout,
    )


@app.task(name=names.UPLOAD_FILE, bind=True)
def upload_file(self: Task, sandbox_id: str, sandbox_path: str, transfer_id: str) -> ToolResult:
    return run_operation(
        self,
        files.upload_file,
        sandbox_id=sandbox_id,
        sandbox_path=sandbox_path,
        transfer_id=transfer_id,
    )


@app.task(name=names.DOWNLOAD_FILE, bind=True)
def download_file(self: Task, sandbox_id: str, sandbox_path: str, transfer_id: str) -> ToolResult:
    return run_operation(
        self,
        files.download_file,
        sandbox_id=sandbox_id,
        sandbox_path=sandbox_path,
        transfer_id=transfer_id,
    )


@app.task(name=names.PUBLIC_URL, bind=True)
def public_url(self: Task, sandbox_id: str, port: int) -> ToolResult:
    return run_operation(self, operations.public_url, sandbox_id=sandbox_id, port=port)


@app.task(name=names.WAIT_FOR_PORT, bind=True)
def wait_for_port(self: Task, sandbox_id: str, port: int, wait_seconds: float) -> ToolResult:
    return run_operation(
        self,
        operations.wait_for_port,
        deadline=wait_seconds + 30,
        sandbox_id=sandbox_id,
        port=port,
        wait_seconds=wait_seconds,
    )


@app.task(name=names.CANCEL_JOB, bind=True)
def cancel_job(self: Task, job_id: str) -> ToolResult:
    return run_operation(self, operations.cancel_job, job_id=job_id)
