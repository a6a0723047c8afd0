"""One ``/execute`` call: a task that drives the context's kernel, and the lines it produces.

The task, not the HTTP response, talks to the kernel, so that a client going away (its timeout, a
cancel) never leaves the kernel half-way: the response calls ``abandon()``, and the task interrupts
the cell, waits for the kernel to be idle, restores the environment and releases the context.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator

from ..errors import ContextClosed, KernelDied, KernelError
from ..streaming import Piece, StreamedAnswer
from . import mime
from .contexts import Context
from .kernel_startup import restore_env_code, set_env_code
from .languages import LANGUAGES, error_from_stderr
from .mime import Output

log = logging.getLogger(__name__)


class Execution:
    """Runs ``code`` in ``context`` once; ``outputs()`` yields its lines as they come."""

    def __init__(
        self,
        context: Context,
        code: str,
        *,
        env_vars: dict[str, str] | None = None,
        max_output_bytes: int = 0,
    ) -> None:
        self.context = context
        self.code = code
        self.env_vars = env_vars or {}
        self.max_output_bytes = max_output_bytes
        self._queue: asyncio.Queue[Output | None] = asyncio.Queue()
        self._abandoned = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running = False  # holds the context's lock
        self._finished = False
        self._output_bytes = 0
        self._truncated = False
        self._stderr: list[str] = []  # what the cell wrote to stderr (a kernel's only error report)
        self._errored = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        self.context.track(self._task)

    async def outputs(self) -> AsyncIterator[Output]:
        """The execution's lines, ``end_of_execution`` last."""
        while (output := await self._queue.get()) is not None:
            yield output
        yield mime.END_OF_EXECUTION

    def abandon(self) -> None:
        """Nobody reads the outputs any more: stop the execution (no-op once it has finished)."""
        if self._finished or self._abandoned.is_set():
            return
        self._abandoned.set()
        self._queue.put_nowait(None)  # ends outputs(): nobody reads them
        if not self._running and self._task is not None:
            self._task.cancel()  # still queued behind another execution: just leave the queue

    async def _run(self) -> None:
        try:
            async with self.context.lock:
                self._running = True
                await self._drive()
        except (KernelError, ContextClosed) as exc:
            self._emit(mime.error(_error_name(exc), str(exc), ""))
        except Exception as exc:  # a bug here must not leave the response hanging
            log.exception("execution failed")
            self._emit(mime.error("InternalError", f"the sandbox agent failed: {exc!r}", ""))
        finally:
            self._finished = True
            self._queue.put_nowait(None)

    async def _drive(self) -> None:
        await self.context.ensure_kernel()
        kernel = self.context.kernel
        set_code, restore_code = _env_code(self.context.language, self.env_vars)
        if self.env_vars:
            await kernel.run_silent(set_code)
        try:
            if not self._abandoned.is_set():
                msg_id = kernel.execute(self.code)
                async for message in kernel.messages(msg_id, stop=self._abandoned):
                    self._forward(message)
                reply = await kernel.reply(msg_id)
                if reply is not None and reply.get("status") == "error" and not self._errored:
                    # tslab reports an error only as stderr text and a failed reply: E2B shows an error
                    self._emit(mime.error(*error_from_stderr("".join(self._stderr))))
                    await asyncio.sleep(LANGUAGES[self.context.language].quiet_after_error)
        finally:
            if self.env_vars and kernel.running:
                await kernel.run_silent(restore_code)
        if self._truncated:
            note = f"[output truncated: more than {self.max_output_bytes} bytes of stdout/stderr]\n"
            self._emit(mime.stream("stderr", note))

    def _forward(self, message: mime.Message) -> None:
        output = mime.from_message(message)
        if output is None:
            return
        if output["type"] == "error":
            self._errored = True
        elif output["type"] == "stderr":
            self._stderr.append(output["text"])
        if output["type"] in ("stdout", "stderr") and self.max_output_bytes > 0:
            output = self._capped(output)
        if output is not None:
            self._emit(output)

    def _capped(self, output: Output) -> Output | None:
        """``output`` cut to what is left of the output allowance, or None once it is spent."""
        data = output["text"].encode()
        room = self.max_output_bytes - self._output_bytes
        if len(data) > room:
            self._truncated = True
            if room <= 0:
                return None
            output = {**output, "text": data[:room].decode(errors="ignore")}
            data = data[:room]
        self._output_bytes += len(data)
        return output

    def _emit(self, output: Output) -> None:
        if not self._abandoned.is_set():
            self._queue.put_nowait(output)


class ExecutionResponse(StreamedAnswer):
    """Streams an execution's lines as NDJSON; abandons the execution if the client goes away."""

    def __init__(self, execution: Execution) -> None:
        body = _ndjson(execution.outputs())
        super().__init__(body, media_type="application/x-ndjson", on_gone=execution.abandon)
        self.execution = execution


async def _ndjson(outputs: AsyncIterator[Output]) -> AsyncGenerator[Piece, None]:
    async for output in outputs:
        yield json.dumps(output).encode() + b"\n", output is mime.END_OF_EXECUTION


def _env_code(language: str, env_vars: dict[str, str]) -> tuple[str, str]:
    """The code that sets ``env_vars`` for one execution in ``language``, and the code that undoes it."""
    spec = LANGUAGES[language]
    if spec.set_env is None:
        return set_env_code(env_vars), restore_env_code()
    return spec.set_env(env_vars), spec.restore_env


def _error_name(exc: Exception) -> str:
    if isinstance(exc, ContextClosed):
        return "ContextNotFound"
    if isinstance(exc, KernelDied):
        return "ContextRestarting"  # what E2B reports when a kernel dies or is restarted
    return "KernelError"
