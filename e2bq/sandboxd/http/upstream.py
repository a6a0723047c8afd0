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
MAX_SIZE_LINE = 1024  # bytes of a chunk's size line (and its extensions)
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

    async def pieces(self) -> AsyncIterator[tuple[bytes, bool]]:
        """The body as it arrives, chunked framing removed, each piece with whether it ends the
        body. The end comes with the last data when the agent sent them together, so the caller
        gets both in one write. Raises UpstreamClosed."""
        reader = self.connection.reader
        try:
            if self.chunked:
                decoder = ChunkedBody()
                while not decoder.ended:
                    data = await reader.read(READ_CHUNK)
                    if not data:
                        raise UpstreamClosed("the agent closed the connection mid-body")
                    out = decoder.feed(data)
                    if decoder.ended:
                        self.complete = True
                        self.keep_alive = self.keep_alive and not decoder.extra
                    if out or decoder.ended:
                        yield out, decoder.ended
            elif self.length is not None:
                left = self.length
                while left:
                    data = await reader.read(min(left, READ_CHUNK))
                    if not data:
                        raise UpstreamClosed("the agent closed the connection mid-body")
                    left -= len(data)
                    self.complete = not left
                    yield data, not left
            else:  # up to the end of the connection
                while data := await reader.read(READ_CHUNK):
                    yield data, False
                self.complete, self.keep_alive = True, False
                yield b"", True
        except ValueError as exc:
            raise UpstreamClosed(f"the agent's answer is not valid HTTP: {exc}") from exc


class ChunkedBody:
    """Decodes a chunked body as it arrives: ``feed()`` returns the data it completes."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._left = 0  # data bytes of the current chunk still to come
        self._crlf = False  # the CRLF that closes the current chunk is still to come
        self.ended = False
        self.extra = False  # bytes came after the end (never from uvicorn): the connection is spent

    def feed(self, data: bytes) -> bytes:
        """Raises ValueError on a malformed body."""
        buffer = self._buffer
        buffer += data
        out = bytearray()
        while not self.ended:
            if self._left:
                take = min(self._left, len(buffer))
                out += buffer[:take]
                del buffer[:take]
                self._left -= take
                if self._left:
                    break
                self._crlf = True
            if self._crlf:
                if len(buffer) < 2:
                    break
                if buffer[:2] != b"\r\n":
                    raise ValueError("a chunk is not followed by CRLF")
                del buffer[:2]
                self._crlf = False
            eol = buffer.find(b"\r\n")
            if eol < 0:
                if len(buffer) > MAX_SIZE_LINE:
                    raise ValueError("a chunk size line is too long")
                break
            size = int(bytes(buffer[:eol]).split(b";", 1)[0], 16)
            if size == 0:
                end = buffer.find(b"\r\n\r\n", eol)  # after the trailers, if any
                if end < 0:
                    break
                del buffer[: end + 4]
                self.ended, self.extra = True, bool(buffer)
                break
            del buffer[: eol + 2]
            self._left = size
        return bytes(out)


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
            if not value.isdigit():
                raise UpstreamClosed(f"the agent's content-length is invalid: {value!r}")
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
