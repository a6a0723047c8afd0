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
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ..errors import ConnectError

Message = dict[str, Any]
UnaryHandler = Callable[[Message], Awaitable[Message]]
StreamHandler = Callable[[Message, Request], AsyncIterator[Message]]

END_STREAM = 0x02
STREAM_CONTENT_TYPE = "application/connect+json"

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
        body = _stream_body(handler(messages[0], request), request, keepalive)
        return StreamingResponse(body, media_type=STREAM_CONTENT_TYPE)

    return endpoint


async def _stream_body(
    source: AsyncIterator[Message], request: Request, keepalive: Message | None
) -> AsyncIterator[bytes]:
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=64)

    async def pump() -> None:
        try:
            async for item in source:
                await queue.put(("msg", item))
            await queue.put(("end", None))
        except ConnectError as err:
            await queue.put(("error", err))
        except Exception as exc:  # an agent bug: end the stream with `internal`, keep serving
            await queue.put(("error", ConnectError("internal", f"{type(exc).__name__}: {exc}")))

    deadline = deadline_seconds(request)
    ends_at = time.monotonic() + deadline if deadline else None
    interval = keepalive_seconds(request)
    task = asyncio.create_task(pump())
    try:
        while True:
            wait = interval
            if ends_at is not None:
                wait = min(wait, ends_at - time.monotonic())
                if wait <= 0:
                    err = ConnectError("deadline_exceeded", "the stream's deadline passed")
                    yield envelope({"error": err.to_json()}, END_STREAM)
                    return
            try:
                kind, item = await asyncio.wait_for(queue.get(), timeout=wait)
            except TimeoutError:
                if keepalive is not None and (ends_at is None or time.monotonic() < ends_at):
                    yield envelope(keepalive)
                continue
            if kind == "msg":
                yield envelope(item)
            elif kind == "error":
                yield envelope({"error": item.to_json()}, END_STREAM)
                return
            else:
                yield envelope({}, END_STREAM)
                return
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
