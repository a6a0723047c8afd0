"""The data plane: requests for a sandbox's envd or code interpreter, passed to its agent.

The SDK sends every sandbox's requests to one origin with ``E2b-Sandbox-Id`` and ``E2b-Sandbox-Port``
headers. sandboxd checks the sandbox's token (or a signed URL's signature), then streams the request
to the agent's unix socket and the answer back. When the caller goes away, the request to the agent
is dropped too, so the agent sees the disconnect (and interrupts a running cell).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import httpx
from starlette.types import Message, Receive, Scope, Send

from ..lifecycle.sandboxes import Sandbox, SandboxHost

log = logging.getLogger("e2bq.sandboxd")

ENVD_PORT = 49983
INTERPRETER_PORT = 49999
_HOP_BY_HOP = {
    b"host",
    b"connection",
    b"keep-alive",
    b"transfer-encoding",
    b"te",
    b"upgrade",
    b"proxy-authorization",
    b"proxy-connection",
    b"trailer",
}


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def is_data_plane(scope: Scope) -> bool:
    if header(scope, b"e2b-sandbox-id") is not None:
        return True
    return scope["path"] == "/files" and b"signature=" in scope.get("query_string", b"")


async def _answer(send: Send, status: int, message: str, code: Any = None) -> None:
    body = json.dumps({"code": status if code is None else code, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def signature(path: str, operation: str, user: str, token: str, expiration: str | None) -> str:
    """E2B's v1 file URL signature (see e2b.sandbox.signature)."""
    raw = f"{path}:{operation}:{user}:{token}" + (f":{expiration}" if expiration else "")
    digest = hashlib.sha256(raw.encode()).digest()
    return "v1_" + base64.b64encode(digest).rstrip(b"=").decode()


class DataPlane:
    def __init__(self, host: SandboxHost) -> None:
        self.host = host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sandbox_id = header(scope, b"e2b-sandbox-id")
        if sandbox_id is None:
            sandbox = self._signed_sandbox(scope)
            if sandbox is None:
                await _answer(send, 401, "the file URL's signature is invalid or expired", 401)
                return
        else:
            found = self.host.sandboxes.get(sandbox_id)
            if found is None or found.end_at <= time.time():
                await _answer(send, 502, f"The sandbox {sandbox_id} was not found")
                return
            sandbox = found
            port = header(scope, b"e2b-sandbox-port") or str(ENVD_PORT)
            if port not in (str(ENVD_PORT), str(INTERPRETER_PORT)):
                await _answer(send, 502, f"The sandbox is running but port is not open: {port}")
                return
            if not self._authorized(scope, sandbox, int(port)):
                await _answer(send, 401, "invalid access token for this sandbox", "unauthenticated")
                return
        await self._forward(sandbox, scope, receive, send)

    def _authorized(self, scope: Scope, sandbox: Sandbox, port: int) -> bool:
        token = header(scope, b"x-access-token")
        if token is not None:
            return hmac.compare_digest(token, sandbox.access_token)
        if port == INTERPRETER_PORT:
            traffic = header(scope, b"e2b-traffic-access-token")
            return traffic is not None and hmac.compare_digest(traffic, sandbox.traffic_token)
        if scope["path"] == "/files" and b"signature=" in scope.get("query_string", b""):
            return self._signed_sandbox(scope) is sandbox
        return False

    def _signed_sandbox(self, scope: Scope) -> Sandbox | None:
        query = parse_qs(scope.get("query_string", b"").decode())
        given = (query.get("signature") or [""])[0]
        expiration = (query.get("signature_expiration") or [None])[0]
        if expiration is not None and (not expiration.isdigit() or int(expiration) < time.time()):
            return None
        operation = "write" if scope["method"] == "POST" else "read"
        path = (query.get("path") or [""])[0]
        user = (query.get("username") or [""])[0]
        for sandbox in self.host.sandboxes.values():
            expected = signature(path, operation, user, sandbox.access_token, expiration)
            if hmac.compare_digest(given, expected) and sandbox.end_at > time.time():
                return sandbox
        return None

    async def _forward(self, sandbox: Sandbox, scope: Scope, receive: Receive, send: Send) -> None:
        body_done = asyncio.Event()
        disconnected = asyncio.Event()
        first = await receive()
        if first["type"] == "http.disconnect":
            return

        async def rest_of_body() -> AsyncIterator[bytes]:
            message: Message = first
            while True:
                if chunk := message.get("body", b""):
                    yield chunk
                if not message.get("more_body", False):
                    break
                message = await receive()
                if message["type"] == "http.disconnect":
                    disconnected.set()
                    break
            body_done.set()

        content: bytes | AsyncIterator[bytes]
        if first.get("more_body", False):
            content = rest_of_body()
        else:  # the usual case: the whole body came in one message
            content = first.get("body", b"")
            body_done.set()
        path = scope["raw_path"].decode() if scope.get("raw_path") else scope["path"]
        if scope.get("query_string"):
            path += "?" + scope["query_string"].decode()
        headers = [(k, v) for k, v in scope["headers"] if k not in _HOP_BY_HOP]
        request = sandbox.client.build_request(
            scope["method"], path, headers=headers, content=content
        )
        started = time.monotonic()
        try:
            response = await sandbox.client.send(request, stream=True)
        except httpx.HTTPError:
            await _answer(send, 502, f"The sandbox {sandbox.sandbox_id} was not found")
            return
        self._count(scope, response.status_code)
        try:
            await self._relay(response, send, receive, body_done, disconnected)
        finally:
            await response.aclose()
            if scope["path"] == "/execute":
                self.host.metrics.executions.inc()
                self.host.metrics.execute_seconds.observe(time.monotonic() - started)

    def _count(self, scope: Scope, status: int) -> None:
        port = header(scope, b"e2b-sandbox-port")
        service = "interpreter" if port == str(INTERPRETER_PORT) else "envd"
        self.host.metrics.requests.labels(service, str(status)).inc()
        if status == 507:
            self.host.metrics.limits_hit.labels("disk").inc()

    async def _relay(
        self,
        response: httpx.Response,
        send: Send,
        receive: Receive,
        body_done: asyncio.Event,
        disconnected: asyncio.Event,
    ) -> None:
        out_headers = [
            (k.lower(), v) for k, v in response.headers.raw if k.lower() not in _HOP_BY_HOP
        ]
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": out_headers}
        )

        async def stream() -> None:
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

        async def watch() -> None:
            if not disconnected.is_set():
                await body_done.wait()
                message: Message = await receive()
                while message["type"] != "http.disconnect":
                    message = await receive()

        streamer = asyncio.create_task(stream())
        watcher = asyncio.create_task(watch())
        try:
            await asyncio.wait({streamer, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (streamer, watcher):
                task.cancel()
            for task in (streamer, watcher):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if streamer.done() and not streamer.cancelled() and streamer.exception() is not None:
            log.info("sandbox answer broke off: %r", streamer.exception())
