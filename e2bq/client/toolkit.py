"""E2BToolkit: the documented high-level API, every operation carried out by the workers.

Every public method returns a JSON-safe dict with ``status`` — its own result type, or an
ErrorResult — and none raises for bad input.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar, overload

from ..callbacks import notify_fields
from ..errors import E2BQError, InvalidInputError, NotFoundError
from ..protocol import (
    CANCEL_JOB,
    DEFAULT_CODE_TIMEOUT,
    DEFAULT_COMMAND_TIMEOUT,
    PUBLIC_URL,
    RUN_CODE,
    RUN_CODE_EACH,
    RUN_COMMAND,
    WAIT_FOR_PORT,
    CancelJobArgs,
    PublicUrlArgs,
    RunCodeArgs,
    RunCodeEachArgs,
    RunCommandArgs,
    Task,
    WaitForPortArgs,
    check_port,
)
from ..stores.events import JobEvents
from ..stores.jobs import JobStore
from ..stores.nodes import made_state, sandbox_state
from ..stores.output import DEFAULT_PAGE_BYTES, JobOutput
from ..types import (
    TERMINAL_STATES,
    AcceptedResult,
    ChartResult,
    CodeResult,
    CommandResult,
    ErrorResult,
    ExecutionResult,
    FanOutResult,
    FileResult,
    JobKind,
    JobNotFoundResult,
    JobOutputPage,
    JobRecord,
    KillResult,
    MapAcceptedResult,
    MapResults,
    OutputStream,
    PngResult,
    SandboxListResult,
    SandboxResult,
    ServerResult,
    ShutdownAllResult,
    ShutdownResult,
    UrlResult,
)
from . import files
from .batchmap import MapJobs
from .calls import Target, tool
from .inputs import MAX_SERVER_WAIT, check_flag, check_id, check_seconds, check_text, is_id
from .joboutput import job_output_page
from .manager import SandboxManager, check_timeout
from .tools import Toolkit
from .waiting import wait_for_end

J = TypeVar("J", RunCodeArgs, RunCommandArgs)  # the arguments of tasks that run as jobs


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
        self.events = JobEvents(self.settings, self.registry.redis)
        self.maps = MapJobs(self.manager, self.jobs)
        if isinstance(global_workers, bool) or not isinstance(global_workers, int) or global_workers < 1:
            raise InvalidInputError(f"global_workers must be a whole number >= 1, not {global_workers!r:.80}")
        self.output = JobOutput(self.settings)
        self.global_workers = global_workers
        self._last_results: dict[str, list[ExecutionResult]] = {}
        super().__init__(name=kwargs.pop("name", "e2b_tools"), tools=self._tool_methods(), **kwargs)
        if auto_create_default and self._live_default() is None:
            self.manager.create(set_default=True)

    def _tool_methods(self) -> list[Callable[..., Any]]:
        names = (
            "run_python_code",
            "run_python_code_background",
            "run_in_all_sandboxes",
            "map_python_code",
            "run_command",
            "run_command_background",
            "upload_file",
            "download_file_from_sandbox",
            "download_png_result",
            "download_chart_data",
            "get_public_url",
            "run_server",
            "get_job_status",
            "get_job_results",
            "get_job_output",
            "kill_job",
            "wait_job",
            "create_sandbox",
            "list_managed_sandboxes",
            "shutdown_sandbox",
            "shutdown_all_sandboxes",
        )
        return [getattr(self, name) for name in names]

    # -- helpers -------------------------------------------------------------------------------

    def _live_default(self) -> str | None:
        """The default sandbox, unless it expired, was killed, or its node is lost."""
        default = self.registry.default_sandbox(self.manager.namespace, self.manager.nodes.key)
        if default is None or not default.live:
            return None
        if default.heartbeat is not None:
            self.manager.router.seen(default.heartbeat)  # the call's route needs no second look at the node
            node = self.manager.nodes.info(default.heartbeat, placed=0)
            if made_state(default.node_started_at, node) == "lost":
                return None
        return default.sandbox_id

    def _target(self, sandbox_id: str | None) -> Target:
        """The sandbox to use: ``sandbox_id``, else the default one (made anew if it is gone)."""
        if sandbox_id is not None:
            return Target(check_id(sandbox_id, "sandbox_id"))
        default = self._live_default()
        if default is not None:
            return Target(default)
        gone = self.registry.default(self.manager.namespace)
        if gone is None:
            raise NotFoundError(
                "no default sandbox: pass sandbox_id, or create one with create_sandbox(set_as_default=True)"
            )
        replacement = self.manager.create(set_default=True).sandbox_id
        return Target(
            replacement,
            note=f"the default sandbox {gone} was gone (killed, expired, or its node lost); "
            f"a new default sandbox {replacement} replaces it (its state starts empty).",
        )

    def _submit_job(
        self,
        kind: JobKind,
        task: Task[J, Any],
        args: J,
        job_id: str | None,
        notify: Mapping[str, str] | None = None,
    ) -> AcceptedResult:
        """Record a job and queue its task (the task id is the job id); ``notify``: its end's
        callback and on_done task (``e2bq.callbacks``)."""
        job_id = uuid.uuid4().hex if job_id is None else check_id(job_id, "job_id")
        sandbox_id = args["sandbox_id"]
        route = self.manager.router.route(args)
        self.jobs.create(
            job_id, kind, sandbox_id, self.manager.namespace, route.node, args=args, notify=notify
        )
        try:
            self.dispatcher.submit(task, args, task_id=job_id, route=route)
        except E2BQError as exc:
            self.jobs.finish(job_id, "error", None, str(exc))
            raise
        return {"status": "accepted", "job_id": job_id, "sandbox_id": sandbox_id}

    def _job(self, job_id: object) -> JobRecord | None:
        """The job's record, after ending it if its worker is gone (so none reads ``running`` forever,
        even when no worker is left to reap it)."""
        if not is_id(job_id):
            return None
        self.jobs.end_if_lost(job_id)
        return self.jobs.get(job_id)

    # -- code ----------------------------------------------------------------------------------

    @tool
    def run_python_code(
        self, code: str, sandbox_id: str | None = None, timeout: int | None = None
    ) -> CodeResult | ErrorResult:
        """Execute Python code synchronously in a sandbox; state persists between calls.

        Returns results (display data and the last expression, by MIME type), logs, and error.
        """
        check_text(code, "code")
        check_timeout(timeout)
        target = self._target(sandbox_id)
        args = RunCodeArgs(
            sandbox_id=target.sandbox_id, code=code, job=False, timeout=float(timeout or DEFAULT_CODE_TIMEOUT)
        )
        result = self.dispatcher.call(RUN_CODE, args)
        if "results" in result:
            self._last_results[target.sandbox_id] = result["results"]
        return target.noted(result)

    @tool
    def run_python_code_background(
        self,
        code: str,
        sandbox_id: str | None = None,
        job_id: str | None = None,
        callback_url: str | None = None,
        on_done: str | None = None,
        on_done_queue: str | None = None,
    ) -> AcceptedResult:
        """Execute Python code as a background job; returns its job_id at once.

        When it ends, its final status is POSTed, signed, to callback_url and sent to the Celery
        task named on_done (on on_done_queue, else Celery's default queue), if given; wait_job
        waits for the end.
        """
        check_text(code, "code")
        notify = notify_fields(self.settings, callback_url, on_done, on_done_queue)
        target = self._target(sandbox_id)
        args = RunCodeArgs(sandbox_id=target.sandbox_id, code=code, job=True)
        return target.noted(self._submit_job("code", RUN_CODE, args, job_id, notify))

    @tool
    def run_in_all_sandboxes(self, code: str, timeout_each: int | None = None) -> FanOutResult:
        """Run code in every managed sandbox at once; a result per sandbox id.

        One task goes to each node, which runs the code in all of its sandboxes concurrently.
        """
        check_text(code, "code")
        check_timeout(timeout_each, "timeout_each")
        limit = float(timeout_each or DEFAULT_CODE_TIMEOUT)
        entries = self.registry.list(self.manager.namespace)
        by_node: dict[str | None, list[str]] = {}
        for entry in entries:
            by_node.setdefault(entry.get("node"), []).append(entry["sandbox_id"])
        outcome: dict[str, CodeResult | ErrorResult] = {}
        sent: list[tuple[str, str | None, list[str]]] = []
        for node, ids in by_node.items():
            for part in _chunks(ids, _FAN_OUT_CHUNK):
                try:
                    route = self.manager.router.to_node(node)
                    args = RunCodeEachArgs(sandbox_ids=part, code=code, timeout=limit)
                    sent.append((self.dispatcher.submit(RUN_CODE_EACH, args, route=route), node, part))
                except E2BQError as exc:
                    outcome.update({sid: _failed(sid, exc) for sid in part})
        until = time.monotonic() + self.dispatcher.wait_for(RUN_CODE_EACH, RunCodeEachArgs(
            sandbox_ids=[], code=code, timeout=limit
        ))
        for task_id, node, part in sent:
            try:
                remaining = max(0.1, until - time.monotonic())
                each = self.dispatcher.wait(task_id, name=RUN_CODE_EACH, timeout=remaining, node=node)
            except E2BQError as exc:
                outcome.update({sid: _failed(sid, exc) for sid in part})
                continue
            if each["status"] == "success":
                outcome.update(each["results"])
            else:
                outcome.update({sid: {**each, "sandbox_id": sid} for sid in part})
        missing = "its node's worker returned no result for it"
        ordered = {
            sid: outcome.get(sid) or {"status": "error", "sandbox_id": sid, "message": missing}
            for sid in (entry["sandbox_id"] for entry in entries)
        }
        succeeded = sum(1 for result in ordered.values() if result["status"] == "success")
        return {"status": "success", "result": ordered, "message": f"{succeeded} of {len(ordered)} succeeded"}

    @tool
    def map_python_code(
        self,
        codes: list[str],
        pool_size: int = 10,
        timeout_each: int | None = None,
        retries: int = 1,
        job_id: str | None = None,
        callback_url: str | None = None,
        on_done: str | None = None,
        on_done_queue: str | None = None,
    ) -> MapAcceptedResult:
        """Run each code string in a pool of at most pool_size new sandboxes, as one background job.

        Returns its job_id at once; get_job_status shows progress (total, done, failed),
        get_job_results the per-item results in input order, kill_job stops every item. A sandbox
        runs item after item, so state (variables, imports, files) carries from one item to the
        next in the same sandbox; an item whose sandbox died is run again on a fresh one, up to
        retries times. The pool's sandboxes are spread over the nodes and shut down at the end.
        callback_url, on_done and on_done_queue: as for run_python_code_background, for the map's end.
        """
        notify = notify_fields(self.settings, callback_url, on_done, on_done_queue)
        return self.maps.submit(
            codes,
            pool_size=pool_size,
            timeout_each=timeout_each,
            retries=retries,
            job_id=job_id,
            notify=notify,
        )

    # -- commands ------------------------------------------------------------------------------

    @overload
    def run_command(
        self, command: str, sandbox_id: str | None = ..., background: Literal[False] = ...
    ) -> CommandResult | ErrorResult: ...
    @overload
    def run_command(
        self,
        command: str,
        sandbox_id: str | None = ...,
        *,
        background: Literal[True],
        callback_url: str | None = ...,
        on_done: str | None = ...,
        on_done_queue: str | None = ...,
    ) -> AcceptedResult | ErrorResult: ...
    @overload
    def run_command(
        self,
        command: str,
        sandbox_id: str | None,
        background: Literal[True],
        callback_url: str | None = ...,
        on_done: str | None = ...,
        on_done_queue: str | None = ...,
    ) -> AcceptedResult | ErrorResult: ...
    @overload
    def run_command(
        self,
        command: str,
        sandbox_id: str | None = ...,
        background: bool = ...,
        callback_url: str | None = ...,
        on_done: str | None = ...,
        on_done_queue: str | None = ...,
    ) -> CommandResult | AcceptedResult | ErrorResult: ...

    @tool
    def run_command(
        self,
        command: str,
        sandbox_id: str | None = None,
        background: bool = False,
        callback_url: str | None = None,
        on_done: str | None = None,
        on_done_queue: str | None = None,
    ) -> CommandResult | AcceptedResult | ErrorResult:
        """Run a shell command (bash -l -c) in a sandbox; with background=True, as a job (its end
        calls back as run_command_background's does)."""
        _check_command(command)
        check_flag(background, "background")
        notify = notify_fields(self.settings, callback_url, on_done, on_done_queue)
        if notify and not background:
            raise InvalidInputError("callback_url and on_done are for background jobs: pass background=True")
        target = self._target(sandbox_id)
        if background:
            job = RunCommandArgs(sandbox_id=target.sandbox_id, command=command, job=True)
            return target.noted(self._submit_job("command", RUN_COMMAND, job, None, notify))
        args = RunCommandArgs(
            sandbox_id=target.sandbox_id, command=command, job=False, timeout=DEFAULT_COMMAND_TIMEOUT
        )
        return target.noted(self.dispatcher.call(RUN_COMMAND, args))

    @tool
    def run_command_background(
        self,
        command: str,
        sandbox_id: str | None = None,
        job_id: str | None = None,
        callback_url: str | None = None,
        on_done: str | None = None,
        on_done_queue: str | None = None,
    ) -> AcceptedResult:
        """Run a shell command as a background job with no time limit; returns its job_id.

        callback_url, on_done and on_done_queue: as for run_python_code_background.
        """
        _check_command(command)
        notify = notify_fields(self.settings, callback_url, on_done, on_done_queue)
        target = self._target(sandbox_id)
        args = RunCommandArgs(sandbox_id=target.sandbox_id, command=command, job=True)
        return target.noted(self._submit_job("command", RUN_COMMAND, args, job_id, notify))

    # -- files ---------------------------------------------------------------------------------

    @tool
    def upload_file(
        self, local_path: str, sandbox_id: str | None = None, sandbox_path: str | None = None
    ) -> FileResult | ErrorResult:
        """Upload a local file to the sandbox (default destination: its name, in /home/user)."""
        target = self._target(sandbox_id)
        return target.noted(files.upload(self.dispatcher, target.sandbox_id, local_path, sandbox_path))

    @tool
    def download_file_from_sandbox(
        self, sandbox_path: str, sandbox_id: str | None = None, local_path: str | None = None
    ) -> FileResult | ErrorResult:
        """Download a file from the sandbox (default destination: its name, in the current folder)."""
        target = self._target(sandbox_id)
        return target.noted(files.download(self.dispatcher, target.sandbox_id, sandbox_path, local_path))

    def _last_results_of(self, sandbox_id: str | None) -> tuple[Target, list[ExecutionResult]]:
        """The sandbox, and the results of the last run_python_code in it from this toolkit."""
        target = self._target(sandbox_id)
        return target, self._last_results.get(target.sandbox_id, [])

    @tool
    def download_png_result(
        self,
        agent: Any = None,
        result_index: int = 0,
        sandbox_id: str | None = None,
        output_path: str | None = None,
    ) -> PngResult:
        """Save the PNG of the last run_python_code in a sandbox (result_index-th image) to a file."""
        target, results = self._last_results_of(sandbox_id)
        return target.noted(files.save_png(results, result_index, target.sandbox_id, output_path, agent))

    @tool
    def download_chart_data(
        self,
        agent: Any = None,
        result_index: int = 0,
        sandbox_id: str | None = None,
        output_path: str | None = None,
        add_as_artifact: bool = True,
    ) -> ChartResult:
        """Save the chart data (E2B's chart dict) of the last run_python_code as JSON."""
        check_flag(add_as_artifact, "add_as_artifact")
        target, results = self._last_results_of(sandbox_id)
        saved = files.save_chart(
            results, result_index, target.sandbox_id, output_path, agent, with_image=add_as_artifact
        )
        return target.noted(saved)

    # -- servers -------------------------------------------------------------------------------

    @tool
    def get_public_url(self, port: int, sandbox_id: str | None = None) -> UrlResult | ErrorResult:
        """The public URL of a service listening on ``port`` in the sandbox."""
        check_port(port)
        target = self._target(sandbox_id)
        args = PublicUrlArgs(sandbox_id=target.sandbox_id, port=port)
        return target.noted(self.dispatcher.call(PUBLIC_URL, args))

    @tool
    def run_server(
        self, command: str, port: int, sandbox_id: str | None = None, wait_seconds: int = 2
    ) -> ServerResult | ErrorResult:
        """Start a server in the sandbox as a background job and return its public URL."""
        check_port(port)
        if check_seconds(wait_seconds, "wait_seconds", zero=True) > MAX_SERVER_WAIT:
            raise InvalidInputError(
                f"wait_seconds is {wait_seconds:g}; wait at most {MAX_SERVER_WAIT:g} s for a server "
                "(check on a slower one later with get_public_url or get_job_status)"
            )
        _check_command(command)
        target = self._target(sandbox_id)
        sid = target.sandbox_id
        server_job = RunCommandArgs(sandbox_id=sid, command=command, job=True)
        job_id = self._submit_job("command", RUN_COMMAND, server_job, None)["job_id"]
        ready = self.dispatcher.call(
            WAIT_FOR_PORT, WaitForPortArgs(sandbox_id=sid, port=port, wait_seconds=float(wait_seconds))
        )
        record = self.jobs.get(job_id)
        exited = None
        if record is not None and record["status"] in TERMINAL_STATES:
            exited = f"the server exited: {record.get('output', '')[-2000:] or record['message']}"
        if ready["status"] != "success":
            failed: ErrorResult = {**ready, "job_id": job_id}
            if exited:
                failed["message"] = exited
            return target.noted(failed)
        server: ServerResult = {
            "status": "success",
            "sandbox_id": ready["sandbox_id"],
            "port": ready["port"],
            "url": ready["url"],
            "result": ready["result"],
            "job_id": job_id,
        }
        if exited:
            server["status"], server["message"] = "error", exited
        elif not ready["result"]:
            # Its URL would not answer: not a success, though the server may still come up.
            server["status"] = "error"
            server["message"] = (
                f"{ready.get('message')}; the server's job {job_id} is still running: "
                "check it with get_job_status, or stop it with kill_job"
            )
        elif "message" in ready:
            server["message"] = ready["message"]
        return target.noted(server)

    # -- jobs ----------------------------------------------------------------------------------

    @tool
    def get_job_status(self, job_id: str) -> JobRecord | JobNotFoundResult:
        """A background job's status: running (queued or started), done, error, cancelled or not_found;
        a map job's record also counts its items: total, done (succeeded) and failed."""
        record = self._job(job_id)
        if record is None:
            return {"status": "not_found", "job_id": str(job_id), "message": f"no job {job_id!r}"}
        return self.maps.with_progress(record) if record["kind"] == "map" else record

    @tool
    def get_job_results(self, job_id: str, offset: int = 0, limit: int = 100) -> MapResults | ErrorResult:
        """A map job's per-item results from offset on (at most limit), in input order; an item not
        finished yet reads {"status": "running", "index": i}."""
        record = self._job(job_id)
        if record is None:
            return {"status": "error", "job_id": str(job_id), "message": f"no job {job_id!r}"}
        return self.maps.results(record, offset, limit)

    @tool
    def get_job_output(
        self, job_id: str, stream: OutputStream = "stdout", offset: int = 0, limit: int = DEFAULT_PAGE_BYTES
    ) -> JobOutputPage | ErrorResult:
        """A page of a background job's whole stdout or stderr, while it runs and after it ended:
        at most limit bytes from byte offset on (of its UTF-8; a page never splits a character).
        Read on from next_offset; complete says the job ended and the page reached the stream's
        end. Past E2BQ_JOB_OUTPUT_MAX_BYTES (64 MiB over both streams) the output is cut:
        truncated is true and a marker line in the stream says so."""
        return job_output_page(self.jobs, self.output, job_id, stream, offset, limit)

    @tool
    def kill_job(self, job_id: str) -> KillResult | ErrorResult:
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
        if record["kind"] == "map":  # its lanes watch the flag: they stop and kill their sandboxes
            return {"status": "success", "job_id": job_id, "result": "cancelled"}
        route = self.manager.router.to_node(record.get("node"))
        self.dispatcher.submit(CANCEL_JOB, CancelJobArgs(job_id=job_id), route=route)
        return {"status": "success", "job_id": job_id, "result": "cancelled"}

    @tool
    def wait_job(self, job_id: str, timeout: float | None = None) -> JobRecord | ErrorResult:
        """Wait until a background job ends (at most timeout seconds; None: no bound) and return its
        status as get_job_status does.

        Woken by the job's end, not by polling. A job still running at the timeout comes back as it
        stands, with "timed_out": true and a message saying so. A job whose worker died is taken
        over by another worker and the wait goes on; with no worker left to take it over it ends
        "error" (its node lost, or E2BQ_TAKEOVER_WAIT passed).
        """
        check_id(job_id, "job_id")
        if timeout is not None:
            check_seconds(timeout, "timeout", zero=True)
        record, timed_out = wait_for_end(self.jobs, self.events, job_id, timeout)
        if record is None:
            return {"status": "error", "job_id": job_id, "message": f"no job {job_id!r}"}
        if record["kind"] == "map":
            record = self.maps.with_progress(record)
        if timed_out:
            record["timed_out"] = True
            record["message"] = f"still running after {timeout or 0:g} s"
        return record

    # -- sandboxes -----------------------------------------------------------------------------

    @tool
    def create_sandbox(
        self, timeout: int | None = None, metadata: dict[str, Any] | None = None, set_as_default: bool = False
    ) -> SandboxResult:
        """Create a sandbox (optionally the default one for calls without sandbox_id)."""
        slot = self.manager.create(timeout=timeout, metadata=metadata, set_default=set_as_default)
        return {"status": "success", "sandbox_id": slot.sandbox_id, "result": slot.to_dict()}

    @tool
    def list_managed_sandboxes(self) -> SandboxListResult:
        """Every sandbox this manager's namespace manages, with metadata, expiry, its node, and its
        state (``lost`` once its node is, or its node's sandbox host restarted)."""
        entries = self.registry.list(self.manager.namespace)
        nodes = {node["node"]: node for node in self.manager.nodes.list()}
        for entry in entries:
            entry["state"] = sandbox_state(entry, nodes.get(entry.get("node") or ""))
        return {"status": "success", "sandboxes": entries, "default_sandbox_id": self._live_default()}

    @tool
    def shutdown_sandbox(self, sandbox_id: str | None = None) -> ShutdownResult:
        """Kill a sandbox (the default one if sandbox_id is None)."""
        target = self._target(sandbox_id)
        return target.noted(self.manager.shutdown(target.sandbox_id))

    @tool
    def shutdown_all_sandboxes(self) -> ShutdownAllResult:
        """Kill every managed sandbox; a result per sandbox id."""
        ids = [entry["sandbox_id"] for entry in self.registry.list(self.manager.namespace)]
        outcome = {sid: self.manager.shutdown(sid) for sid in ids}
        return {"status": "success", "result": outcome}


_FAN_OUT_CHUNK = 100  # sandboxes per fan-out task (one node's, or E2B cloud's spread over workers)


def _chunks(ids: list[str], size: int) -> list[list[str]]:
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def _failed(sandbox_id: str, exc: E2BQError) -> ErrorResult:
    return {"status": "error", "sandbox_id": sandbox_id, "message": str(exc)}


def _check_command(command: object) -> None:
    if not isinstance(command, str) or not command.strip():
        raise InvalidInputError("command must be a non-empty string")
    check_text(command, "command")
    if "\x00" in command:
        raise InvalidInputError("command contains a NUL character, which no shell command can hold")
