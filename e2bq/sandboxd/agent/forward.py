"""TCP streams into the sandbox: how sandboxd reaches a server listening on a port inside.

sandboxd connects to the forward socket and sends one line, ``<port>\\n``; the agent connects to
that port on the sandbox's own loopback and answers ``OK\\n`` (then bytes flow both ways untouched)
or ``ERR <reason>\\n``. Any TCP protocol passes: HTTP, websockets, a database.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from .config import AgentConfig

_CHUNK = 64 * 1024


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then half-close the far side so the peer sees the end too."""
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def splice(
    a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    b: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    """Join two connections until both directions end, then close both."""
    try:
        await asyncio.gather(pipe(a[0], b[1]), pipe(b[0], a[1]))
    finally:
        for _, writer in (a, b):
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class Forwarder:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        if self.config.forward_fd is not None:  # bound by sandboxd, outside the jail
            listening = socket.socket(fileno=self.config.forward_fd)
            self.server = await asyncio.start_unix_server(self._handle, sock=listening)
            return
        path = self.config.forward_socket
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self.server = await asyncio.start_unix_server(self._handle, path=str(path))

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        try:
            port = int(line.strip())
            if not 0 < port < 65536:
                raise ValueError(port)
        except ValueError:
            writer.write(b"ERR invalid port\n")
            writer.close()
            return
        try:
            inner = await asyncio.open_connection("127.0.0.1", port)
        except OSError as exc:
            writer.write(f"ERR port {port} is not open: {exc.strerror}\n".encode())
            writer.close()
            return
        writer.write(b"OK\n")
        await writer.drain()
        await splice((reader, writer), inner)
