"""The agent's HTTP server: every service's routes on one unix socket, plus the TCP forwarder."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import replace

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .config import AgentConfig
from .envd.files import FilesService
from .envd.filesystem import FilesystemService
from .envd.process import ProcessService
from .forward import Forwarder
from .interpreter.service import InterpreterService


async def _health(_: Request) -> Response:
    return Response(status_code=204)


def build_app(config: AgentConfig) -> Starlette:
    """The agent's ASGI app. Kernels start in the app's lifespan and stop with it."""
    processes = ProcessService(config)
    interpreter = InterpreterService(config)
    forwarder = Forwarder(config)
    routes: list[BaseRoute] = [Route("/health", _health, methods=["GET"])]
    routes += processes.routes()
    routes += FilesystemService(config).routes()
    routes += FilesService(config).routes()
    routes += interpreter.routes()

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await forwarder.start()
        await interpreter.start()
        try:
            yield
        finally:
            await interpreter.close()
            await processes.close()
            await forwarder.close()

    return Starlette(routes=routes, lifespan=lifespan)


def _listen(path: str) -> socket.socket:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(1024)
    return sock


async def serve(config: AgentConfig, ready_fd: int | None = None) -> None:
    """Serve until SIGTERM; write one byte to ``ready_fd`` once the socket accepts connections."""
    # In a jail the sockets come bound and listening from sandboxd (their paths are outside)
    sock = (
        socket.socket(fileno=config.socket_fd)
        if config.socket_fd is not None
        else _listen(str(config.socket))
    )
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(config),
            log_level="warning",
            http="auto",  # httptools when the runtime has it, h11 else
            lifespan="on",
            access_log=False,
            timeout_keep_alive=300,
            timeout_graceful_shutdown=2,
        )
    )
    if ready_fd is not None:
        os.write(ready_fd, b"1")
        os.close(ready_fd)
    await server.serve(sockets=[sock])


def use_pidfd_child_watcher() -> None:
    """Watch child processes through pidfds, as Python 3.12 does by default.

    Python 3.11's default watcher starts a thread per process to wait for it: a third of the cost
    of starting a command. (uvloop, tried instead, spawns with fork rather than vfork and made a
    command start cost twice as much in the agent.)
    """
    if sys.version_info < (3, 12) and hasattr(os, "pidfd_open"):
        asyncio.set_child_watcher(asyncio.PidfdChildWatcher())


def main(argv: list[str] | None = None, *, restarted: bool = False) -> None:
    """``agent CONFIG.json [READY_FD]``; ``restarted``: the agent started again by its supervisor,
    which no kernel forked in by sandboxd waits for (it starts its own)."""
    args = sys.argv[1:] if argv is None else argv
    config = AgentConfig.load(args[0])
    if restarted:
        config = replace(config, kernel_dir=None, kernel_fallback=None)
    ready_fd = int(args[1]) if len(args) > 1 else None
    use_pidfd_child_watcher()
    asyncio.run(serve(config, ready_fd))
