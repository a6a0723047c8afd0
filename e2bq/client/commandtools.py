"""The command tools: shell commands, in the foreground or as jobs, and servers with public URLs."""

from __future__ import annotations

from typing import Literal, overload

from ..callbacks import notify_fields
from ..errors import InvalidInputError
from ..protocol import (
    DEFAULT_COMMAND_TIMEOUT,
    PUBLIC_URL,
    RUN_COMMAND,
    WAIT_FOR_PORT,
    PublicUrlArgs,
    RunCommandArgs,
    WaitForPortArgs,
    check_port,
)
from ..types import (
    TERMINAL_STATES,
    AcceptedResult,
    CommandResult,
    ErrorResult,
    ServerResult,
    UrlResult,
)
from .calls import tool
from .compat import with_output
from .core import ToolkitCore
from .inputs import MAX_SERVER_WAIT, check_flag, check_seconds, check_text


class CommandTools(ToolkitCore):
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
        calls back as run_command_background's does).

        Returns stdout, stderr and exit_code (and output: {stdout, stderr}, as agno's E2BTools
        nests them)."""
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
        return target.noted(with_output(self.dispatcher.call(RUN_COMMAND, args)))

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


def _check_command(command: object) -> None:
    if not isinstance(command, str) or not command.strip():
        raise InvalidInputError("command must be a non-empty string")
    check_text(command, "command")
    if "\x00" in command:
        raise InvalidInputError("command contains a NUL character, which no shell command can hold")
