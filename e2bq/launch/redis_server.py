"""A private ``redis-server`` on a loopback port."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import redis

from ..errors import ConfigurationError
from .process import Process, free_port, require_free, spawn


@dataclass(frozen=True, kw_only=True)
class RedisProcess(Process):
    """A running redis-server started by :func:`start_redis`.

    Attributes:
        url: ``redis://127.0.0.1:<port>/0``, what ``E2BQ_REDIS_URL`` should say to reach it.
        port: the TCP port it listens on (loopback only).
        folder: its working folder: what it persists, and its log.
    """

    url: str
    port: int
    folder: Path


def start_redis(
    folder: Path,
    *args: str,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    name: str | None = None,
    timeout: float = 20.0,
) -> RedisProcess:
    """Start a redis-server on 127.0.0.1 and return once it answers PING.

    ``port`` defaults to a free one. The server works in ``folder`` (made if missing) and logs to
    ``folder/<name>.log`` (``name`` defaults to ``redis-<port>``). It persists nothing unless ``args``
    (extra ``redis-server`` options, after the defaults so they win) turn persistence on, e.g.
    ``("--appendonly", "yes")``: a server started again with the same ``folder`` and ``port`` then
    comes back with what the earlier one wrote, at the same URL. ``env`` adds to its environment.

    Raises ConfigurationError when redis-server is not installed, its port is in use, or it exits
    while starting or does not answer within ``timeout`` seconds (it is stopped first). Use the
    result as a context manager, or call its ``stop()``.
    """
    server = shutil.which("redis-server")
    if server is None:
        raise ConfigurationError("redis-server is not installed (apt-get install -y redis-server)")
    port = port or free_port()
    name = name or f"redis-{port}"
    require_free(port, f"redis-server {name}")
    folder.mkdir(parents=True, exist_ok=True)
    url = f"redis://127.0.0.1:{port}/0"
    cmd = [
        server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", str(folder), *args,
    ]
    log = folder / f"{name}.log"
    proc = spawn(
        cmd, log=log, env=env, ready=lambda: _answers(url), timeout=timeout, what=f"redis-server {name}"
    )
    return RedisProcess(name=name, proc=proc, log=log, url=url, port=port, folder=folder)


def _answers(url: str) -> bool:
    """PING answered (a server still loading its data refuses it, so it is not ready yet)."""
    with redis.Redis.from_url(url, socket_timeout=5) as client:
        return bool(client.ping())
