"""E2BToolkit: the documented high-level API, every operation carried out by the workers.

Every public method returns a JSON-safe dict with ``status``; none raises for bad input.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec

from .. import celery_app as tasks
from ..errors import E2BQError, InvalidInputError, NotFoundError
from ..stores.jobs import JobStore
from ..types import TERMINAL_STATES, ExecutionResult, JobKind, JobRecord, ToolResult
from . import files
from .dispatch import QUEUE_MARGIN
from .manager import SandboxManager, check_timeout
from .tools import Toolkit

log = logging.getLogger("e2bq")
P = ParamSpec("P")
DEFAULT_CODE_TIMEOUT = 300.0
DEFAULT_COMMAND_TIMEOUT = 60.0


def tool(method: Callable[P, ToolResult]) -> Callable[P, ToolResult]:
    """Turn any e2bq error into ``{"status": "error", "message"}``; log e2bq's own bugs."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> ToolResult:
        notes: threading.local = args[0]._notes  # type: ignore[attr-defined]
        notes.text = None
        try:
            result = method(*args, **kwargs)
        except E2BQError as exc:
            result = {"status": "error", "message": str(exc)}
        except Exception as exc:
            log.exception("%s failed", method.__name__)
            result = {"status": "error", "message": f"internal error in e2bq: {type(exc).__name__}: {exc}"}
        if notes.text:  # e.g. the default sandbox was replaced: say so
            result["message"] = " ".join(filter(None, [notes.text, result.get("message")]))
        return result

    return wrapper


class E2BToolkit(Toolkit):
    """High-level toolkit for sandbox operations, as tools for an agent or plain methods.

    ``global_workers`` bounds how many results this client collects at once in fan-outs; the
    work itself runs on however many workers serve the queue.
    """

    hidden_parameters = frozenset({"agent"})

    def __init__(
        self,
        sandbox_manager: SandboxManager,
        auto_create_default: bool = True,
        global_workers: int = 10,
        **kwargs: Any,
    ) -> None:
        self.manager = sandbox_manager
        self.settings = sandbox_manager.settings
        self.dispatcher = sandbox_manager.dispatcher
        self.registry = sandbox_manager.registry
        self.jobs = JobStore(self.settings, self.registry.redis)
        self.global_workers = max(1, int(global_workers))
        self._last_results: dict[str, list[ExecutionResult]] = {}
        self._notes = threading.local()
        super().__init__(name=kwargs.pop("name", "e2b_tools"), tools=self._tool_methods(), **kwargs)
        if auto_create_default and self._live_default() is None:
            self.manager.create(set_default=True)

    def _tool_methods(self) -> list[Callable[..., Any]]:
        names = (
            "run_python_code",
            "run_python_code_background",
            "run_in_all_sandboxes",
            "run_command",
            "run_command_background",
            "upload_file",
            "download_file_from_sandbox",
            "download_png_result",
            "download_chart_data",
            "get_public_url",
            "run_server",
            "get_job_status",
            "kill_job",
            "create_sandbox",
            "list_managed_sandboxes",
            "shutdown_sandbox",
            "shutdown_all_sandboxes",
        )
        return [getattr(self, name) for name in names]

    # -- helpers -------------------------------------------------------------------------------

    def _live_default(self) -> str | None:
        default = self.registry.default(self.manager.namespace)
        return default if default and self.registry.get(default) else None

    def _sandbox(self, sandbox_id: str | None) -> str:
        if sandbox_id is not None:
            if not isinstance(sandbox_id, str) or not sandbox_id:
                raise InvalidInputError("sandbox_id must be a non-empty string")
            return sandbox_id
        default = self._live_default()
        if default is not None:
            return default
        gone = self.registry.default(self.manager.namespace)
        if gone is None:
            raise NotFoundError(
                "no default sandbox: pass sandbox_id, or create one with create_sandbox(set_as_default=True)"
            )
        replacement = self.manager.create(set_default=True).sandbox_id
        self._notes.text = (
            f"the default sandbox {gone} was gone (killed or expired); "
            f"a new default sandbox {replacement} replaces it (its state starts empty)."
        )
        return replacement

    def _submit_job(
        self, kind: JobKind, task: str, sandbox_id: str, job_id: str | None, **kwargs: Any
    ) -> ToolResult:
        if job_id is not None and (not isinstance(job_id, str) or not job_id.strip()):
            raise InvalidInputError("job_id must be a non-empty string")
        job_id = job_id or uuid.uuid4().hex
        self.jobs.create(job_id, kind, sandbox_id, self.manager.namespace)
        try:
            self.dispatcher.submit(task, {"sandbox_id": sandbox_id, "job": True, **kwargs}, task_id=job_id)
        except E2BQError as exc:
            self.jobs.finish(job_id, "error", None, str(exc))
            raise
        return {"status": "accepted", "job_id": job_id, "sandbox_id": sandbox_id}

    # -- code ----------------------------------------------------------------------------------

    @tool
    def run_python_code(
        self, code: str, sandbox_id: str | None = None, timeout: int | None = None
    ) -> ToolResult:
        """Execute Python code synchronously in a sandbox; state persists between calls.

        Returns results (display data and the last expression, by MIME type), logs, and error.
        """
        if not isinstance(code, str):
            raise InvalidInputError("code must be a string")
        check_timeout(timeout)
        sid = self._sandbox(sandbox_id)
        limit = float(timeout or DEFAULT_CODE_TIMEOUT)
        result = self.dispatcher.call(
            tasks.RUN_CODE, {"sandbox_id": sid, "code": code, "timeout": limit}, timeout=limit + QUEUE_MARGIN
        )
        if "results" in result:
            self._last_results[sid] = result["results"]
        return result

    @tool
    def run_python_code_background(
        self, code: str, sandbox_id: str | None = None, job_id: str | None = None
    ) -> ToolResult:
        """Execute Python code as a background job; returns its job_id at once."""
        if not isinstance(code, str):
            raise InvalidInputError("code must be a string")
        return self._submit_job(
            "code", tasks.RUN_CODE, self._sandbox(sandbox_id), job_id, code=code, timeout=None
        )

    @tool
    def run_in_all_sandboxes(self, code: str, timeout_each: int | None = None) -> ToolResult:
        """Run code in every managed sandbox at once; a result per sandbox id."""
        if not isinstance(code, str):
            raise InvalidInputError("code must be a string")
        check_timeout(timeout_each, "timeout_each")
        limit = float(timeout_each or DEFAULT_CODE_TIMEOUT)
        ids = [entry["sandbox_id"] for entry in self.registry.list(self.manager.namespace)]
        task_ids = self.dispatcher.fan_out(
            tasks.RUN_CODE, [{"sandbox_id": sid, "code": code, "timeout": limit} for sid in ids]
        )
        deadline = time.monotonic() + limit + QUEUE_MARGIN
        outcome: dict[str, ToolResult] = {}
        for sid, task_id in zip(ids, task_ids, strict=True):
            try:
                remaining = max(0.1, deadline - time.monotonic())
                outcome[sid] = self.dispatcher.wait(task_id, name=tasks.RUN_CODE, timeout=remaining)
            except E2BQError as exc:
                outcome[sid] = {"status": "error", "sandbox_id": sid, "message": str(exc)}
        failed = sum(1 for r in outcome.values() if r.get("status") != "success")
        return {
            "status": "success",
            "result": outcome,
            "message": f"{len(ids) - failed} of {len(ids)} succeeded",
        }

    # -- commands ------------------------------------------------------------------------------

    @tool
    def run_command(
        self, command: str, sandbox_id: str | None = None, background: bool = False
    ) -> ToolResult:
        """Run a shell command (bash -l -c) in a sandbox; with background=True, as a job."""
        if not isinstance(command, str) or not command.strip():
            raise InvalidInputError("command must be a non-empty string")
        if background:
            return self.run_command_background(command, sandbox_id)
        sid = self._sandbox(sandbox_id)
        return self.dispatcher.call(
            tasks.RUN_COMMAND,
            {"sandbox_id": sid, "command": command, "timeout": DEFAULT_COMMAND_TIMEOUT},
            timeout=DEFAULT_COMMAND_TIMEOUT + QUEUE_MARGIN,
        )

    @tool
    def run_command_background(
        self, command: str, sandbox_id: str | None = None, job_id: str | None = None
    ) -> ToolResult:
        """Run a shell command as a background job with no time limit; returns its job_id."""
        if not isinstance(command, str) or not command.strip():
            raise InvalidInputError("command must be a non-empty string")
        return self._submit_job(
            "command", tasks.RUN_COMMAND, self._sandbox(sandbox_id), job_id, command=command
        )

    # -- files ---------------------------------------------------------------------------------

    @tool
    def upload_file(
        self, local_path: str, sandbox_id: str | None = None, sandbox_path: str | None = None
    ) -> ToolResult:
        """Upload a local file to the sandbox (default destination: its name, in /home/user)."""
        return files.upload(self.dispatcher, self._sandbox(sandbox_id), local_path, sandbox_path)

    @tool
    def download_file_from_sandbox(
        self, sandbox_path: str, sandbox_id: str | None = None, local_path: str | None = None
    ) -> ToolResult:
        """Download a file from the sandbox (default destination: its name, in the current folder)."""
        return files.download(self.dispatcher, self._sandbox(sandbox_id), sandbox_path, local_path)

    def _last(self, sandbox_id: str | None) -> tuple[str, list[ExecutionResult]]:
        sid = self._sandbox(sandbox_id)
        return sid, self._last_results.get(sid, [])

    @tool
    def download_png_result(
        self,
        agent: Any = None,
        result_index: int = 0,
        sandbox_id: str | None = None,
        output_path: str | None = None,
    ) -> ToolResult:
        """Save the PNG of the last run_python_code in a sandbox (result_index-th image) to a file."""
        sid, results = self._last(sandbox_id)
        result = files.pick(results, "png", result_index)
        path = Path(output_path or f"{sid}_result_{result_index}.png")
        size = files.write_png(result, path)
        attached = files.attach_image(agent, path, path.read_bytes())
        return {"status": "success", "sandbox_id": sid, "path": str(path), "size": size, "result": attached}

    @tool
    def download_chart_data(
        self,
        agent: Any = None,
        result_index: int = 0,
        sandbox_id: str | None = None,
        output_path: str | None = None,
        add_as_artifact: bool = True,
    ) -> ToolResult:
        """Save the chart data (E2B's chart dict) of the last run_python_code as JSON."""
        sid, results = self._last(sandbox_id)
        result = files.pick(results, "chart", result_index)
        path = Path(output_path or f"{sid}_chart_{result_index}.json")
        size = files.write_chart(result, path)
        if add_as_artifact and result.get("png") is not None:
            image = path.with_suffix(".png")
            files.attach_image(agent, image, image.read_bytes() if files.write_png(result, image) else b"")
        return {
            "status": "success",
            "sandbox_id": sid,
            "path": str(path),
            "size": size,
            "result": result["chart"],
        }

    # -- servers -------------------------------------------------------------------------------

    @tool
    def get_public_url(self, port: int, sandbox_id: str | None = None) -> ToolResult:
        """The public URL of a service listening on ``port`` in the sandbox."""
        _check_port(port)
        return self.dispatcher.call(
            tasks.PUBLIC_URL,
            {"sandbox_id": self._sandbox(sandbox_id), "port": port},
            timeout=QUEUE_MARGIN + 30,
        )

    @tool
    def run_server(
        self, command: str, port: int, sandbox_id: str | None = None, wait_seconds: int = 2
    ) -> ToolResult:
        """Start a server in the sandbox as a background job and return its public URL."""
        _check_port(port)
        if isinstance(wait_seconds, bool) or not isinstance(wait_seconds, int | float) or wait_seconds < 0:
            raise InvalidInputError(f"wait_seconds must be a number >= 0, not {wait_seconds!r}")
        started = self.run_command_background(command, sandbox_id)
        if started["status"] != "accepted":
            return started
        sid, job_id = started["sandbox_id"], started["job_id"]
        ready = self.dispatcher.call(
            tasks.WAIT_FOR_PORT,
            {"sandbox_id": sid, "port": port, "wait_seconds": float(wait_seconds)},
            timeout=float(wait_seconds) + 30 + QUEUE_MARGIN,
        )
        ready["job_id"] = job_id
        record = self.jobs.get(job_id)
        if record and record.get("status") in TERMINAL_STATES:
            ready["status"] = "error"
            ready["message"] = (
                f"the server exited: {record.get('output', '')[-2000:] or record.get('message')}"
            )
        elif ready.get("status") == "success" and ready.get("result") is False:
            # Its URL would not answer: not a success, though the server may still come up.
            ready["status"] = "error"
            ready["message"] = (
                f"{ready.get('message')}; the server's job {job_id} is still running: "
                "check it with get_job_status, or stop it with kill_job"
            )
        return ready

    # -- jobs ----------------------------------------------------------------------------------

    def _job(self, job_id: object) -> JobRecord | None:
        """The job's record, after ending it if its worker is gone (so none reads ``running`` forever,
        even when no worker is left to reap it)."""
        if not isinstance(job_id, str) or not job_id:
            return None
        self.jobs.end_if_lost(job_id)
        return self.jobs.get(job_id)

    @tool
    def get_job_status(self, job_id: str) -> ToolResult:
        """A background job's status: running (queued or started), done, error, cancelled or not_found."""
        record = self._job(job_id)
        if record is None:
            return {"status": "not_found", "job_id": str(job_id), "message": f"no job {job_id!r}"}  # type: ignore[typeddict-item]
        return dict(record)  # type: ignore[return-value]

    @tool
    def kill_job(self, job_id: str) -> ToolResult:
        """Cancel a background job: a queued job never runs; a running one's work is stopped."""
        record = self._job(job_id)
        if record is None:
            return {"status": "error", "job_id": str(job_id), "message": f"no job {job_id!r}"}
        if not self.jobs.cancel(job_id):
            return {
                "status": "error",
                "job_id": job_id,
                "message": f"job {job_id} already ended ({record['status']})",
            }
        self.dispatcher.revoke(job_id)
        self.dispatcher.submit(tasks.CANCEL_JOB, {"job_id": job_id})
        return {"status": "success", "job_id": job_id, "result": "cancelled"}

    # -- sandboxes -----------------------------------------------------------------------------

    @tool
    def create_sandbox(
        self, timeout: int | None = None, metadata: dict[str, Any] | None = None, set_as_default: bool = False
    ) -> ToolResult:
        """Create a sandbox (optionally the default one for calls without sandbox_id)."""
        slot = self.manager.create(timeout=timeout, metadata=metadata, set_default=set_as_default)
        return {"status": "success", "sandbox_id": slot.sandbox_id, "result": slot.to_dict()}

    @tool
    def list_managed_sandboxes(self) -> ToolResult:
        """Every sandbox this manager's namespace manages, with metadata and expiry."""
        entries = self.registry.list(self.manager.namespace)
        return {"status": "success", "sandboxes": entries, "default_sandbox_id": self._live_default()}

    @tool
    def shutdown_sandbox(self, sandbox_id: str | None = None) -> ToolResult:
        """Kill a sandbox (the default one if sandbox_id is None)."""
        return self.manager.shutdown(self._sandbox(sandbox_id))  # type: ignore[return-value]

    @tool
    def shutdown_all_sandboxes(self) -> ToolResult:
        """Kill every managed sandbox; a result per sandbox id."""
        ids = [entry["sandbox_id"] for entry in self.registry.list(self.manager.namespace)]
        outcome = {sid: self.manager.shutdown(sid) for sid in ids}
        return {"status": "success", "result": outcome}


def _check_port(port: Any) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise InvalidInputError(f"port must be a whole number between 1 and 65535, not {port!r}")
