"""Executions that outlive their client: e2bq's background code jobs (an extension of E2B's API).

``POST /e2bq/executions`` takes what ``/execute`` takes plus a ``key`` (the job's id) and answers
the same NDJSON lines. Unlike ``/execute``, the execution does not stop when its client goes away:
its lines are kept, and a second request with the same key — from the worker that takes the job
over after the first one died — gets every line again from the start (or from ``from``, a line
index), then the rest as they come. A key runs its code at most once: a later request with the
same key never starts it again, whatever its body says. ``DELETE /e2bq/executions/{key}`` stops
the execution (``kill_job``).

An execution's lines are kept until ``RETAIN`` seconds after it ended; its stdout and stderr are
bounded as ``/execute``'s are (the agent's ``max_output_bytes``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..errors import HTTPError
from ..streaming import Piece, StreamedAnswer
from . import mime
from .contexts import Context
from .execution import Execution

RETAIN = 900.0  # seconds an ended execution's lines are kept for a late re-attach
MAX_KEY = 200

Resolve = Callable[[dict[str, Any]], Awaitable[tuple[str, Context, dict[str, str] | None]]]


class _Run:
    """One keyed execution: its lines so far, and a wake-up for those who follow it."""

    def __init__(self, execution: Execution) -> None:
        self.execution = execution
        self.lines: list[bytes] = []
        self.ended_at: float | None = None
        self._changed = asyncio.Event()
        self._pump = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        try:
            async for output in self.execution.outputs():
                if output is mime.END_OF_EXECUTION:  # the last line: it goes out with the body's end
                    self.ended_at = time.monotonic()
                self.lines.append(json.dumps(output).encode() + b"\n")
                self._changed.set()
        finally:
            self.ended_at = self.ended_at or time.monotonic()
            self._changed.set()

    async def follow(self, start: int) -> AsyncGenerator[Piece, None]:
        index = max(0, start)
        while True:
            self._changed.clear()
            while index < len(self.lines):
                line = self.lines[index]
                index += 1
                yield line, self.ended_at is not None and index == len(self.lines)
            if self.ended_at is not None:
                return
            await self._changed.wait()


class DetachedExecutions:
    """The keyed executions of one sandbox's code interpreter."""

    def __init__(self, resolve: Resolve, *, max_output_bytes: int) -> None:
        self._resolve = resolve  # the body's code, context and env_vars, as /execute reads them
        self.max_output_bytes = max_output_bytes
        self._runs: dict[str, _Run] = {}

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/e2bq/executions", self._start, methods=["POST"]),
            Route("/e2bq/executions/{key}", self._stop, methods=["DELETE"]),
        ]

    async def _start(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return HTTPError(400, "the body is not valid JSON").response()
        if not isinstance(body, dict):
            return HTTPError(400, "the body must be a JSON object").response()
        key, start = body.get("key"), body.get("from", 0)
        if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY:
            return HTTPError(400, f"key must be a string of 1 to {MAX_KEY} characters").response()
        if not isinstance(start, int) or start < 0:
            return HTTPError(400, "from must be a line index (an integer, 0 or more)").response()
        self._prune()
        run = self._runs.get(key)
        if run is None:
            try:
                code, context, env_vars = await self._resolve(body)
            except HTTPError as exc:
                return exc.response()
            run = self._runs.get(key)  # another request with this key may have started it meanwhile
            if run is None:
                execution = Execution(
                    context, code, env_vars=env_vars, max_output_bytes=self.max_output_bytes
                )
                execution.start()
                run = self._runs[key] = _Run(execution)
        return StreamedAnswer(run.follow(start), media_type="application/x-ndjson", on_gone=_stay)

    async def _stop(self, request: Request) -> Response:
        run = self._runs.get(request.path_params["key"])
        if run is None:
            return JSONResponse({"code": 404, "message": "no execution with this key"}, status_code=404)
        run.execution.abandon()  # interrupts the cell; its lines end with end_of_execution
        return Response(status_code=204)

    def _prune(self) -> None:
        now = time.monotonic()
        for key, run in list(self._runs.items()):
            if run.ended_at is not None and now - run.ended_at > RETAIN:
                del self._runs[key]


def _stay() -> None:
    """A client that goes away leaves the execution running: another takes it up by its key."""

