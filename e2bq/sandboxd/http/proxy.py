"""The data plane: requests for a sandbox's envd or code interpreter, passed to its agent.

The SDK sends every sandbox's requests to one origin with ``E2b-Sandbox-Id`` and ``E2b-Sandbox-Port``
headers. sandboxd checks the sandbox's token (or a signed URL's signature), then streams the request
to the agent's unix socket and the answer back. When the caller goes away, the request to the agent
is dropped too, so the agent sees the disconnect (and interrupts a running cell).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from starlette.types import Message, Receive, Scope, Send

from ..errors import HostError
from ..lifecycle import pause
from ..lifecycle.sandboxes import Sandbox, SandboxHost
from .streamcut import Envelopes, cut_off, is_connect_stream
from .upstream import AgentConnections, Answer, Connection, UpstreamClosed, read_answer, request_head

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
# Not passed on to the agent: sandboxd frames the body itself and has answered `expect` already.
_NOT_FORWARDED = _HOP_BY_HOP | {b"content-length", b"expect"}
BUFFERED_BODY = 64 * 1024  # bytes of a request body gathered to go to the agent in one write
CLIENT_STREAMS = frozenset({"/process.Process/StreamInput"})  # Connect client streams: never gathered
ROOT_STARTS = "/process.Process/Start"  # with the SDK's user "root" (see agent.envd.asroot)
ROOT_USER = "Basic " + base64.b64encode(b"root:").decode()


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
        self.agents = AgentConnections()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sandbox_id = header(scope, b"e2b-sandbox-id")
        if sandbox_id is None:
            sandbox = self._signed_sandbox(scope)
            if sandbox is None:
                await _answer(send, 401, "the file URL's signature is invalid or expired", 401)
                return
        else:
            found = self.host.sandboxes.get(sandbox_id)
            if found is None or not found.alive():
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
        if sandbox.state == "paused" and not await self._wake(sandbox, send):
            return
        await self._forward(sandbox, scope, receive, send)

    async def _wake(self, sandbox: Sandbox, send: Send) -> bool:
        """A paused sandbox: resumed if it has auto-resume, else answered as E2B's proxy answers
        for a paused sandbox (502 "was not found", which the SDK raises as not running)."""
        try:
            if await pause.wake(self.host, sandbox):
                return True
        except HostError as exc:
            await _answer(send, exc.status, exc.message)
            return False
        message = f"The sandbox {sandbox.sandbox_id} was not found: it is paused; resume it with connect()"
        await _answer(send, 502, message)
        return False

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
            if hmac.compare_digest(given, expected) and sandbox.alive():
                return sandbox
        return None

    async def _forward(self, sandbox: Sandbox, scope: Scope, receive: Receive, send: Send) -> None:
        # Gather what the caller sends at once (nearly always the whole body, e.g. the SDK's
        # chunked Connect requests) so that the agent gets head and body in one write.
        # A client stream's messages go on one by one, as the caller sends them.
        gather = 1 if scope["path"] in CLIENT_STREAMS else BUFFERED_BODY
        body, more = bytearray(), True
        while more and len(body) < gather:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        started = time.monotonic()
        launcher = self.host.launcher
        if scope["path"] == ROOT_STARTS and header(scope, b"authorization") == ROOT_USER and launcher:
            await launcher.ensure_broker(sandbox.jail)  # root inside: its broker, forked when first asked
        try:
            answer = await self._request(sandbox, scope, bytes(body), more, receive)
        except (OSError, UpstreamClosed):
            await _answer(send, 502, f"The sandbox {sandbox.sandbox_id} was not found")
            return
        if answer is None:  # the caller left while its body was on its way
            return
        self._count(scope, answer.status)
        try:
            await _relay(answer, send, receive, sandbox.sandbox_id)
        finally:
            if answer.complete and answer.keep_alive:
                self.agents.release(sandbox.sandbox_id, answer.connection)
            else:
                answer.connection.abort()
            if scope["path"] == "/execute":
                self.host.metrics.executions.inc()
                self.host.metrics.execute_seconds.observe(time.monotonic() - started)

    async def _request(
        self, sandbox: Sandbox, scope: Scope, body: bytes, more: bool, receive: Receive
    ) -> Answer | None:
        """Send the request to the agent and read its answer's head; None if the caller left.

        A kept-alive connection the agent closed meanwhile gets the request once more on a new
        connection, when the whole body is in hand (nothing reached the agent the first time).
        """
        target = scope["raw_path"].decode("latin-1") if scope.get("raw_path") else scope["path"]
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        headers = [(k, v) for k, v in scope["headers"] if k not in _NOT_FORWARDED]
        caller_length = header(scope, b"content-length")
        while True:
            connection = await self.agents.connect(
                sandbox.sandbox_id, str(sandbox.jail.paths.socket), self.host.sandboxes
            )
            try:
                if more:
                    framing = (
                        b"content-length: %s\r\n" % caller_length.encode()
                        if caller_length is not None
                        else b"transfer-encoding: chunked\r\n"
                    )
                    head = request_head(scope["method"], target, headers, framing)
                    if not await _stream_body(connection, head, body, receive, caller_length is None):
                        connection.abort()
                        return None
                else:
                    framing = b"content-length: %d\r\n" % len(body)
                    connection.writer.write(request_head(scope["method"], target, headers, framing) + body)
                return await read_answer(connection, head_only=scope["method"] == "HEAD")
            except (OSError, UpstreamClosed):
                connection.abort()
                if more or not connection.reused:
                    raise

    def _count(self, scope: Scope, status: int) -> None:
        port = header(scope, b"e2b-sandbox-port")
        service = "interpreter" if port == str(INTERPRETER_PORT) else "envd"
        self.host.metrics.requests.labels(service, str(status)).inc()
        if status == 507:
            self.host.metrics.limits_hit.labels("disk").inc()


async def _stream_body(
    connection: Connection, head: bytes, body: bytes, receive: Receive, chunked: bool
) -> bool:
    """Send a body larger than BUFFERED_BODY, or a client stream's, as it arrives; False if the
    caller left first."""
    writer = connection.writer

    def frame(data: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(data), data) if chunked else data

    writer.write(head + (frame(body) if body else b""))
    more = True
    while more:
        await writer.drain()  # the agent's pace, not the caller's, bounds what is buffered here
        message = await receive()
        if message["type"] == "http.disconnect":
            return False
        if data := message.get("body", b""):
            writer.write(frame(data))
        more = message.get("more_body", False)
    if chunked:
        writer.write(b"0\r\n\r\n")
    return True


async def _relay(answer: Answer, send: Send, receive: Receive, sandbox_id: str) -> None:
    """Stream the agent's answer to the caller; if the caller leaves, drop the agent's connection,
    which the agent sees (and, for a running cell, interrupts it). A Connect stream the agent
    breaks off between two messages ends as E2B's edge ends it (see streamcut.py)."""
    await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
    if answer.complete:
        await send({"type": "http.response.body", "body": b""})
        return
    watcher = asyncio.create_task(_drop_on_disconnect(receive, answer.connection))
    envelopes = Envelopes() if is_connect_stream(answer.headers) else None
    try:
        async for data, last in answer.pieces():
            if envelopes is not None:
                envelopes.feed(data)
            if last:
                watcher.cancel()  # before the last send: that one wakes receive() with a disconnect
            await send({"type": "http.response.body", "body": data, "more_body": not last})
    except UpstreamClosed as exc:
        # An unfinished answer: uvicorn closes the caller's connection, who sees it cut; a Connect
        # stream cut between two messages is ended with E2B's message instead.
        log.info("sandbox answer broke off: %r", exc)
        if envelopes is not None and envelopes.can_end() and not watcher.done():
            await send({"type": "http.response.body", "body": cut_off(sandbox_id), "more_body": False})
    finally:
        watcher.cancel()


async def _drop_on_disconnect(receive: Receive, connection: Connection) -> None:
    message: Message = await receive()
    while message["type"] != "http.disconnect":
        message = await receive()
    connection.abort()
