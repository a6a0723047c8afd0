"""The Connect protocol (JSON codec) as envd speaks it: unary calls and server streams.

Unary call: ``POST /<service>/<Method>`` with a JSON body, answered 200 with the response message or
with an HTTP error status and ``{"code": "<connect code>", "message": ...}``.

Server stream: ``Content-Type: application/connect+json``; the request and every response message are
enveloped as 1 flag byte + 4-byte big-endian length + JSON. The last envelope has flag ``0x02`` and
carries ``{}`` or ``{"error": {...}}``. ``connect-timeout-ms`` bounds the whole stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import ConnectError
from ..streaming import Piece, StreamedAnswer

Message = dict[str, Any]
UnaryHandler = Callable[[Message], Awaitable[Message]]
StreamHandler = Callable[[Message, Request], AsyncIterator[Message]]

END_STREAM = 0x02
STREAM_CONTENT_TYPE = "application/connect+json"
BATCH_BYTES = 256 * 1024  # most bytes of queued messages sent in one piece


def error_response(err: ConnectError) -> Response:
    return JSONResponse(err.to_json(), status_code=err.http_status)


def envelope(message: Message, flags: int = 0) -> bytes:
    data = json.dumps(message, separators=(",", ":")).encode()
    return struct.pack(">BI", flags, len(data)) + data


def parse_envelopes(body: bytes) -> list[Message]:
    """Decode every enveloped JSON message in a request body."""
    messages: list[Message] = []
    offset = 0
    while offset + 5 <= len(body):
        _flags, size = struct.unpack_from(">BI", body, offset)
        offset += 5
        chunk = body[offset : offset + size]
        if len(chunk) != size:
            raise ConnectError("invalid_argument", "truncated Connect envelope")
        messages.append(json.loads(chunk) if chunk else {})
        offset += size
    return messages


def deadline_seconds(request: Request) -> float | None:
    """The stream's deadline from ``connect-timeout-ms``; None when absent or 0 (no deadline)."""
    raw = request.headers.get("connect-timeout-ms")
    if not raw:
        return None
    try:
        millis = int(raw)
    except ValueError:
        return None
    return millis / 1000 if millis > 0 else None


def keepalive_seconds(request: Request, default: float = 50.0) -> float:
    raw = request.headers.get("keepalive-ping-interval")
    try:
        return max(0.05, float(raw)) if raw else default
    except ValueError:
        return default


def unary(handler: UnaryHandler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap ``handler(message) -> message`` as a Connect unary endpoint."""

    async def endpoint(request: Request) -> Response:
        try:
            body = await request.body()
            message = json.loads(body) if body else {}
            if not isinstance(message, dict):
                raise ConnectError("invalid_argument", "request body must be a JSON object")
            return JSONResponse(await handler(message))
        except ConnectError as err:
            return error_response(err)
        except json.JSONDecodeError as exc:
            return error_response(ConnectError("invalid_argument", f"invalid JSON: {exc}"))

    return endpoint


def server_stream(
    handler: StreamHandler, *, keepalive: Message | None = None
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap ``handler(message, request)`` (an async iterator of messages) as a server stream.

    A keepalive message is sent whenever the handler is quiet for the client's ping interval; the
    stream ends with ``deadline_exceeded`` when ``connect-timeout-ms`` passes. Ending the stream, for
    any reason, only stops the iteration: what the handler started goes on.
    """

    async def endpoint(request: Request) -> Response:
        try:
            messages = parse_envelopes(await request.body())
            if not messages:
                raise ConnectError("invalid_argument", "a request message is required")
        except ConnectError as err:
            return error_response(err)
        except json.JSONDecodeError as exc:
            return error_response(ConnectError("invalid_argument", f"invalid JSON: {exc}"))
        stream = _MessageStream(handler(messages[0], request), request, keepalive)
        return StreamedAnswer(stream.pieces(), media_type=STREAM_CONTENT_TYPE, on_gone=stream.stop)

    return endpoint


ClientStreamHandler = Callable[[AsyncIterator[Message]], Awaitable[Message]]


def client_stream(handler: ClientStreamHandler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap ``handler(messages) -> message`` as a Connect client stream: ``messages`` are decoded as
    the request body arrives (each one acted on at once, not after the client has sent them all),
    and the answer is one message and the end of the stream, or the end with the error."""

    async def endpoint(request: Request) -> Response:
        try:
            answer = [envelope(await handler(_arriving(request)))]
        except ConnectError as err:
            answer = [envelope({"error": err.to_json()}, END_STREAM)]
        except json.JSONDecodeError as exc:
            invalid = ConnectError("invalid_argument", f"invalid JSON: {exc}")
            answer = [envelope({"error": invalid.to_json()}, END_STREAM)]
        else:
            answer.append(envelope({}, END_STREAM))
        return Response(b"".join(answer), media_type=STREAM_CONTENT_TYPE)

    return endpoint


async def _arriving(request: Request) -> AsyncIterator[Message]:
    """The enveloped JSON messages of a request body, each as soon as it has fully arrived."""
    buffer = bytearray()
    async for chunk in request.stream():
        buffer += chunk
        while len(buffer) >= 5:
            flags, size = struct.unpack_from(">BI", buffer, 0)
            if len(buffer) < 5 + size:
                break
            data = bytes(buffer[5 : 5 + size])
            del buffer[: 5 + size]
            if flags & END_STREAM:
                return
            message = json.loads(data) if data else {}
            if not isinstance(message, dict):
                raise ConnectError("invalid_argument", "each message must be a JSON object")
            yield message
    if buffer:
        raise ConnectError("invalid_argument", "truncated Connect envelope")


class _MessageStream:
    """A handler's messages as enveloped body pieces: keepalives while it is quiet, the deadline
    enforced, the end envelope last. What is queued already goes out in one piece (a finished
    command's end event and the end envelope: one write). ``stop()`` (the client left) ends it."""

    def __init__(self, source: AsyncIterator[Message], request: Request, keepalive: Message | None) -> None:
        self.source = source
        self.keepalive = keepalive
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=64)
        deadline = deadline_seconds(request)
        self.ends_at = time.monotonic() + deadline if deadline else None
        self.interval = keepalive_seconds(request)
        self.stopped = False

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            with contextlib.suppress(asyncio.QueueFull):  # full: its reader is not waiting on it
                self.queue.put_nowait(("stop", None))

    async def _pump(self) -> None:
        try:
            async for item in self.source:
                await self.queue.put(("msg", item))
            await self.queue.put(("end", None))
        except ConnectError as err:
            await self.queue.put(("error", err))
        except Exception as exc:  # an agent bug: end the stream with `internal`, keep serving
            await self.queue.put(("error", ConnectError("internal", f"{type(exc).__name__}: {exc}")))

    async def pieces(self) -> AsyncGenerator[Piece, None]:
        task = asyncio.create_task(self._pump())
        try:
            while not self.stopped:
                wait = self.interval
                if self.ends_at is not None:
                    wait = min(wait, self.ends_at - time.monotonic())
                    if wait <= 0:
                        err = ConnectError("deadline_exceeded", "the stream's deadline passed")
                        yield envelope({"error": err.to_json()}, END_STREAM), True
                        return
                try:
                    kind, item = await _next(self.queue, wait)
                except TimeoutError:
                    alive = self.ends_at is None or time.monotonic() < self.ends_at
                    if self.keepalive is not None and alive:
                        yield envelope(self.keepalive), False
                    continue
                piece = self._batch(kind, item)
                if piece is None:
                    return
                yield piece
                if piece[1]:
                    return
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            aclose = getattr(self.source, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    def _batch(self, kind: str, item: Any) -> Piece | None:
        """The envelopes of this item and of those queued behind it; None once stopped."""
        parts: list[bytes] = []
        size = 0
        while True:
            if kind == "stop":
                return None
            if kind != "msg":
                end = {"error": item.to_json()} if kind == "error" else {}
                parts.append(envelope(end, END_STREAM))
                return b"".join(parts), True
            parts.append(envelope(item))
            size += len(parts[-1])
            if size >= BATCH_BYTES or self.queue.empty():
                return b"".join(parts), False
            kind, item = self.queue.get_nowait()


async def _next(queue: asyncio.Queue[tuple[str, Any]], wait: float) -> tuple[str, Any]:
    """The queue's next item; TimeoutError after ``wait`` seconds without one. (Not wait_for:
    on Python 3.11 that wraps every get in a task of its own.)"""
    if not queue.empty():
        return queue.get_nowait()
    async with asyncio.timeout(wait):
        return await queue.get()
