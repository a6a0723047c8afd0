"""Flower, through ``e2bq flower``, on a loopback port."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from .process import Process, free_port, require_free, spawn


@dataclass(frozen=True, kw_only=True)
class FlowerProcess(Process):
    """A running Flower started by :func:`start_flower`.

    Attributes:
        url: ``http://127.0.0.1:<port>``, its web UI, HTTP API and ``/metrics``.
        port: the TCP port it listens on (loopback only).
    """

    url: str
    port: int


def start_flower(
    folder: Path,
    *args: str,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    name: str | None = None,
    timeout: float = 60.0,
) -> FlowerProcess:
    """Start ``e2bq flower`` on 127.0.0.1 and return once its ``/healthcheck`` answers 200.

    Flower watches the broker named by ``E2BQ_REDIS_URL`` in its environment: this process's plus
    ``env``. It listens on loopback only, so its HTTP API is served without a login
    (``FLOWER_UNAUTHENTICATED_API=true``, which ``env`` may override). ``port`` defaults to a free
    one; it logs to ``folder/<name>.log`` (``name`` defaults to ``flower-<port>``). ``args`` are
    extra Flower options (e.g. ``"--max_tasks=10000"``).

    Raises ConfigurationError when its port is in use, or Flower exits while starting or does not
    answer within ``timeout`` seconds (it is stopped first). Use the result as a context manager, or
    call its ``stop()``.
    """
    port = port or free_port()
    name = name or f"flower-{port}"
    require_free(port, f"flower {name}")
    url = f"http://127.0.0.1:{port}"
    log = folder / f"{name}.log"
    cmd = [
        sys.executable, "-m", "e2bq.cli", "flower", "--port", str(port), "--address", "127.0.0.1", *args,
    ]
    proc = spawn(
        cmd,
        log=log,
        env={"FLOWER_UNAUTHENTICATED_API": "true", **(env or {})},
        ready=lambda: httpx.get(url + "/healthcheck", timeout=5).status_code == 200,
        timeout=timeout,
        what=f"flower {name}",
    )
    return FlowerProcess(name=name, proc=proc, log=log, url=url, port=port)
