"""HTTP/1.1 to a sandbox's agent over its unix socket: kept-alive connections, streamed bodies.

Every data-plane request crosses this client, so it is kept lean: httpx (its request and response
models, httpcore's pool, h11's pure-Python parser) cost sandboxd ~3 ms of CPU per forwarded call,
more than all the rest of sandboxd together. The far end is always our own agent (uvicorn), which
frames a body with ``content-length`` or ``transfer-encoding: chunked`` and sends no interim 1xx
answer since sandboxd does not forward ``expect`` (it answers that itself), so that is all this
client reads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Container
from dataclasses import dataclass, field

Headers = list[tuple[bytes, bytes]]

IDLE_EXPIRY = 120.0  # seconds an idle connection is kept; the agent closes them after 300
MAX_IDLE = 8  # idle connections kept per sandbox
READ_CHUNK = 64 * 1024
_NO_BODY_STATUS = {204, 304}


class UpstreamClosed(ConnectionError):
    """The agent's connection ended before its answer was complete."""


@dataclass(eq=False)
class Connection:
    """One connection to an agent, used by one request at a time."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    reused: bool = False
    idle_since: float = field(default_factory=time.monotonic)

    def usable(self) -> bool:
        """Still open, not closed by the agent, and not idle for too long."""
        fresh = time.monotonic() - self.idle_since < IDLE_EXPIRY
        return fresh and not self.reader.at_eof() and not self.writer.is_closing()

    def abort(self) -> None:
        """Drop the connection now: the agent sees its client leave (and stops what it serves)."""
        self.writer.transport.abort()


@dataclass(eq=False)
class Answer:
    """The agent's answer: its status and headers now, its body as it comes (``chunks()``)."""

    status: int
    headers: Headers
    connection: Connection
    length: int | None  # from content-length; None: chunked, or up to the end of the connection
    chunked: bool
    keep_alive: bool
    complete: bool = False  # the body was read to its end: the connection can serve again

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes, chunk by chunk (chunked framing removed). Raises UpstreamClosed."""
        reader = self.connection.reader
        try:
            if self.chunked:
                while size := await _chunk_size(reader):
                    data = await reader.readexactly(size + 2)  # the chunk and its CRLF
                    yield data[:-2]
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, if any
                    pass
            elif self.length is not None:
                left = self.length
                while left:
                    data = await reader.read(min(left, READ_CHUNK))
                    if not data:
                        raise UpstreamClosed("the agent closed the connection mid-body")
                    left -= len(data)
                    yield data
            else:
                while data := await reader.read(READ_CHUNK):
                    yield data
                self.keep_alive = False
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise UpstreamClosed(f"the agent's answer broke off: {exc!r}") from exc
        self.complete = True


async def _chunk_size(reader: asyncio.StreamReader) -> int:
    line = await reader.readuntil(b"\r\n")
    return int(line.split(b";", 1)[0], 16)


def request_head(method: str, target: str, headers: Headers, framing: bytes) -> bytes:
    """The request line and headers. ``headers`` come from uvicorn's parser (no CR or LF in them);
    ``framing`` is the ``content-length`` or ``transfer-encoding`` line, CRLF included."""
    lines = [f"{method} {target} HTTP/1.1\r\nhost: sandbox\r\n".encode("latin-1")]
    lines += [name + b": " + value + b"\r\n" for name, value in headers]
    lines.append(framing)
    lines.append(b"\r\n")
    return b"".join(lines)


async def read_answer(connection: Connection, *, head_only: bool) -> Answer:
    """Read the status line and headers of the next answer on ``connection``.

    ``head_only`` (a HEAD request) means no body follows whatever the headers say. Raises
    UpstreamClosed when the connection ends first.
    """
    try:
        head = await connection.reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        raise UpstreamClosed(f"no answer from the agent: {exc!r}") from exc
    lines = head[:-4].split(b"\r\n")
    try:
        status = int(lines[0].split(b" ", 2)[1])
    except (IndexError, ValueError) as exc:
        raise UpstreamClosed(f"the agent's status line is invalid: {lines[0]!r}") from exc
    headers: Headers = []
    length: int | None = None
    chunked = False
    keep_alive = True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = value.lower().endswith(b"chunked")
            continue  # hop-by-hop: uvicorn frames the body again for the caller
        elif name == b"connection":
            keep_alive = b"close" not in value.lower()
            continue
        elif name == b"keep-alive":
            continue
        headers.append((name, value))
    if head_only or status in _NO_BODY_STATUS:
        length, chunked = 0, False
    answer = Answer(status, headers, connection, length, chunked, keep_alive)
    answer.complete = length == 0
    return answer


class AgentConnections:
    """Idle kept-alive connections to the agents, by sandbox id."""

    def __init__(self) -> None:
        self._idle: dict[str, list[Connection]] = {}

    async def connect(self, sandbox_id: str, path: str, live: Container[str]) -> Connection:
        """An idle connection to the sandbox's agent, or a new one. ``live`` names the sandboxes
        still alive: opening a connection is when the pools of the others are closed."""
        idle = self._idle.get(sandbox_id)
        while idle:
            connection = idle.pop()
            if connection.usable():
                connection.reused = True
                return connection
            connection.abort()
        self._forget_dead(live)
        reader, writer = await asyncio.open_unix_connection(path, limit=READ_CHUNK)
        return Connection(reader, writer)

    def release(self, sandbox_id: str, connection: Connection) -> None:
        """Keep ``connection`` for the sandbox's next request (its last answer was read whole)."""
        idle = self._idle.setdefault(sandbox_id, [])
        if len(idle) >= MAX_IDLE or not connection.usable():
            connection.abort()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)

    def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.abort()
        self._idle.clear()

    def _forget_dead(self, live: Container[str]) -> None:
        for sandbox_id in [s for s in self._idle if s not in live]:
            for connection in self._idle.pop(sandbox_id):
                connection.abort()
