"""Servers in a sandbox, reachable from the host: one TCP listener per published port.

A connection to the listener is carried over the agent's forward socket to the same port on the
sandbox's loopback; any TCP protocol passes (HTTP, websockets). The listeners close with the sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

from ..agent.forward import splice


class PortPublisher:
    """The published ports of one sandbox."""

    def __init__(self, forward_socket: Path, listen_host: str, public_host: str) -> None:
        self.forward_socket = forward_socket
        self.listen_host = listen_host
        self.public_host = public_host
        self.servers: dict[int, asyncio.Server] = {}
        self._lock = asyncio.Lock()
        # Asked before each connection is carried in: whether the sandbox runs (a paused one with
        # auto-resume is resumed by it). Unset, every connection is carried.
        self.wake: Callable[[], Awaitable[bool]] | None = None

    async def publish(self, port: int) -> str:
        """The URL at which the sandbox's ``port`` answers (created on first use)."""
        async with self._lock:
            server = self.servers.get(port)
            if server is None:
                server = await asyncio.start_server(
                    lambda r, w: self._forward(port, r, w), self.listen_host, 0
                )
                self.servers[port] = server
        host_port = server.sockets[0].getsockname()[1]
        host = f"[{self.public_host}]" if ":" in self.public_host else self.public_host
        return f"http://{host}:{host_port}"

    async def is_open(self, port: int) -> bool:
        """Whether something inside the sandbox accepts connections on ``port`` now."""
        try:
            reader, writer = await asyncio.open_unix_connection(str(self.forward_socket))
        except OSError:
            return False
        try:
            writer.write(f"{port}\n".encode())
            await writer.drain()
            return (await reader.readline()).startswith(b"OK")
        finally:
            writer.close()

    async def close(self) -> None:
        for server in self.servers.values():
            server.close()
        self.servers.clear()

    async def _forward(
        self, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            if self.wake is not None and not await self.wake():
                writer.close()  # paused: refused as E2B refuses a paused sandbox's port
                return
        except Exception:  # e.g. a host too full to resume it: the connection is refused
            writer.close()
            return
        try:
            inner = await asyncio.open_unix_connection(str(self.forward_socket))
            inner[1].write(f"{port}\n".encode())
            await inner[1].drain()
            answer = await inner[0].readline()
        except OSError:
            writer.close()
            return
        if not answer.startswith(b"OK"):
            inner[1].close()
            writer.close()
            return
        with contextlib.suppress(Exception):
            await splice((reader, writer), inner)
