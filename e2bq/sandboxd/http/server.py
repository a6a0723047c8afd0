"""Run sandboxd: uvicorn serving the host app until SIGTERM or SIGINT, then every sandbox ends."""

from __future__ import annotations

import logging

import uvicorn

from ..settings import HostSettings
from .app import HostApp


def serve(settings: HostSettings, *, log_level: str = "info") -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    config = uvicorn.Config(
        HostApp(settings),
        host=settings.host,
        port=settings.port,
        # C event loop and HTTP parser (both in e2bq's dependencies): every call to a sandbox
        # crosses this server, and h11 plus asyncio's pure-Python loop cost a millisecond of it
        loop="uvloop",
        http="httptools",
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_keep_alive=75,
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()
