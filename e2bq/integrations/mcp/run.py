"""Putting the server together from the environment and running it until its transport ends."""

from __future__ import annotations

import functools

import anyio

from ... import E2BToolkit, JobEvents, SandboxManager
from .jobs import JobWatch
from .server import build_server
from .transports import serve_http, serve_stdio


def run(*, transport: str, host: str, port: int, path: str, token: str | None, default_sandbox: bool) -> None:
    """Build the toolkit as any client does (E2BQ_* environment) and serve it over ``transport``
    (``stdio`` or ``http``); raises e2bq errors when Redis cannot be reached."""
    manager = SandboxManager()
    toolkit = E2BToolkit(manager, auto_create_default=default_sandbox)
    server = build_server(toolkit, JobWatch(toolkit, JobEvents(manager.settings)))
    if transport == "http":
        anyio.run(functools.partial(serve_http, server, host=host, port=port, path=path, token=token))
    else:
        anyio.run(serve_stdio, server)
