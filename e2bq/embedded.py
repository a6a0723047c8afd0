"""The embedded default: a private Redis, a local sandboxd, a worker and Flower on this machine.

``e2bq up`` runs it; every process is a child that ends with it. Clients need only
``E2BQ_REDIS_URL``; the worker also gets the sandbox host's address and key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from .errors import ConfigurationError

EMBEDDED_WARM_POOL = 2  # sandboxes launched ahead of creates, unless E2BQ_SANDBOXD_WARM_POOL says


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(check: object, seconds: float, what: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigurationError(f"{what} exited with code {proc.returncode} while starting")
        with contextlib.suppress(Exception):
            if check():  # type: ignore[operator]
                return
        time.sleep(0.05)
    raise ConfigurationError(f"{what} did not come up within {seconds:g} s")


@dataclass
class Stack:
    """The running processes of the embedded default, and the environment that reaches them."""

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def spawn(
        self, name: str, cmd: list[str], extra_env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env, **(extra_env or {})}
        )
        log.close()
        self.procs.append((name, proc))
        return proc

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def start_redis(stack: Stack) -> str:
    server = shutil.which("redis-server")
    if server is None:
        raise ConfigurationError("redis-server is not installed (apt-get install -y redis-server)")
    port = free_port()
    proc = stack.spawn(
        "redis",
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(stack.workdir)],
    )
    url = f"redis://127.0.0.1:{port}/0"
    _wait(lambda: redis.Redis.from_url(url).ping(), 20, "redis-server", proc)
    return url


def start_sandboxd(stack: Stack) -> dict[str, str]:
    port, key = free_port(), "e2b_" + secrets.token_hex(20)
    state = Path(tempfile.mkdtemp(prefix="e2bq-sandboxd-"))
    proc = stack.spawn(
        "sandboxd",
        [sys.executable, "-m", "e2bq.sandboxd", "--port", str(port), "--api-key", key,
         "--state-dir", str(state), "--log-level", "warning",
         "--warm-pool", os.environ.get("E2BQ_SANDBOXD_WARM_POOL") or str(EMBEDDED_WARM_POOL)],
    )
    url = f"http://127.0.0.1:{port}"
    _wait(lambda: httpx.get(url + "/health").status_code == 200, 60, "sandboxd", proc)
    return {"E2B_API_URL": url, "E2B_SANDBOX_URL": url, "E2B_API_KEY": key}


def start_worker(stack: Stack, *args: str, name: str = "worker") -> subprocess.Popen[bytes]:
    """An ``e2bq worker`` whose Celery node and log are called ``name`` (one name per worker)."""
    return stack.spawn(
        name,
        [sys.executable, "-m", "e2bq.cli", "worker", "--loglevel", "warning", "-n", f"{name}@%h", *args],
    )


def start_flower(stack: Stack, port: int) -> subprocess.Popen[bytes]:
    return stack.spawn(
        "flower",
        [sys.executable, "-m", "e2bq.cli", "flower", "--port", str(port), "--address", "127.0.0.1"],
        {"FLOWER_UNAUTHENTICATED_API": "true"},
    )


@contextlib.contextmanager
def embedded(
    *, worker_args: tuple[str, ...] = (), flower_port: int | None = None, workers: int = 1
) -> Iterator[Stack]:
    """Start the embedded default (with ``workers`` workers); stop every process it started on exit."""
    stack = Stack(Path(tempfile.mkdtemp(prefix="e2bq-up-")))
    try:
        stack.env["E2BQ_REDIS_URL"] = os.environ.get("E2BQ_REDIS_URL") or start_redis(stack)
        stack.env.update(start_sandboxd(stack))
        for index in range(workers):
            start_worker(stack, *worker_args, name="worker" if index == 0 else f"worker{index + 1}")
        if flower_port is not None:
            start_flower(stack, flower_port)
        yield stack
    finally:
        stack.stop()
