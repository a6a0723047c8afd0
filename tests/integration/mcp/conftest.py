"""`e2bq mcp` against a real stack: the SDK's client in the test process, the server a subprocess.

``open_session`` connects a ``ClientSession`` over either transport: stdio spawns ``python -m
e2bq.cli mcp`` per session (the client owns that process); HTTP reaches the module's server, which
listens on a free port behind a token.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import mcp_types as types
import pytest
from mcp import Client, ClientSession, StdioServerParameters, stdio_client
from mcp.client._transport import TransportStreams
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from e2bq import E2BToolkit, SandboxManager
from tests.integration.queue.conftest import queue_worker, redis_url, stack_env  # noqa: F401
from tests.procs import WorkerProcess, free_port, stop, wait_for

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "test-token-" + "7f" * 8


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def mcp_env(stack_env: dict[str, str], queue_worker: WorkerProcess) -> Iterator[dict[str, str]]:  # noqa: F811
    """The servers' environment: the module's stack; its sandboxes are shut down at the end."""
    yield dict(stack_env)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in stack_env.items():
            patch.setenv(name, value)
        E2BToolkit(SandboxManager(), auto_create_default=False).shutdown_all_sandboxes()


@dataclass(frozen=True)
class HttpServer:
    url: str
    token: str


@pytest.fixture(scope="module")
def http_server(mcp_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    """`e2bq mcp --transport http` on a free port, with a token; stopped by PID at the end."""
    port = free_port()
    log = tmp_path_factory.mktemp("mcp-http") / "server.log"
    command = [sys.executable, "-m", "e2bq.cli", "mcp", "--transport", "http", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **mcp_env, "E2BQ_MCP_TOKEN": TOKEN},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: _listening(process, port, log), 60, f"the MCP server on port {port}")
        yield HttpServer(url=f"http://127.0.0.1:{port}/mcp", token=TOKEN)
    finally:
        stop(process)


def _listening(process: subprocess.Popen[bytes], port: int, log: Path) -> bool:
    if process.poll() is not None:
        pytest.fail(f"the MCP server exited {process.returncode}: {log.read_text()[-2000:]}")
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Notifications:
    """The server notifications a session received, and a wait for one of them."""

    def __init__(self) -> None:
        self.received: list[types.ServerNotification] = []
        self._arrived = anyio.Event()

    async def __call__(self, message: types.ServerNotification | Exception) -> None:
        if not isinstance(message, Exception):
            self.received.append(message)
            self._arrived.set()
            self._arrived = anyio.Event()

    async def resource_updated(self, uri: str, timeout: float) -> None:
        """Return once ``notifications/resources/updated`` for ``uri`` arrived; fail after ``timeout`` s."""
        with anyio.fail_after(timeout):
            while not any(
                isinstance(n, types.ResourceUpdatedNotification) and n.params.uri == uri
                for n in self.received
            ):
                await self._arrived.wait()


@dataclass(frozen=True)
class Connector:
    """Connects the SDK's clients to a server over ``transport`` (stdio: a server process each)."""

    transport: str
    env: dict[str, str]
    errlog: Path  # the stdio servers' stderr
    http: HttpServer | None = None

    @contextlib.asynccontextmanager
    async def session(self, notifications: Notifications | None = None) -> AsyncIterator[ClientSession]:
        """An initialized ``ClientSession`` (the handshake era, as most hosts speak it); server
        notifications go to ``notifications``."""
        async with contextlib.AsyncExitStack() as stack:
            read, write = await stack.enter_async_context(await self._transport(stack))
            session = await stack.enter_async_context(
                ClientSession(read, write, message_handler=notifications)
            )
            await session.initialize()
            yield session

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[Client]:
        """The SDK's high-level ``Client``, which speaks protocol 2026-07-28 when the server does."""
        async with contextlib.AsyncExitStack() as stack:
            yield await stack.enter_async_context(Client(await self._transport(stack)))

    async def _transport(
        self, stack: contextlib.AsyncExitStack
    ) -> contextlib.AbstractAsyncContextManager[TransportStreams]:
        if self.transport == "stdio":
            parameters = StdioServerParameters(
                command=sys.executable,
                args=["-m", "e2bq.cli", "mcp", "--transport", "stdio"],
                env={**os.environ, **self.env},
                cwd=ROOT,
            )
            return stdio_client(parameters, errlog=stack.enter_context(self.errlog.open("a")))
        assert self.http is not None
        headers = {"Authorization": f"Bearer {self.http.token}"}
        client = await stack.enter_async_context(create_mcp_http_client(headers=headers))
        return streamable_http_client(self.http.url, http_client=client)
