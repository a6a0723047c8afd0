"""Starting and stopping the real processes tests need: free ports, deadlines, kill by PID."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

API_KEY = "e2b_" + "5e" * 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            result = condition()
            if result:
                return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def stop(proc: subprocess.Popen[bytes], *, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class SandboxHostProcess:
    """A running ``e2bq sandboxd`` started by a test."""

    proc: subprocess.Popen[bytes]
    url: str
    api_key: str
    state_dir: Path
    log: Path

    @property
    def env(self) -> dict[str, str]:
        """What points the unmodified e2b SDK at this host."""
        return {"E2B_API_KEY": self.api_key, "E2B_API_URL": self.url, "E2B_SANDBOX_URL": self.url}

    def control(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-KEY": self.api_key}, timeout=30)


@contextlib.contextmanager
def sandbox_host(
    tmp: Path, *extra: str, env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[SandboxHostProcess]:
    """A running sandboxd on ``port`` (a free one by default: pass the port of a stopped host to
    restart it at the same address)."""
    port = port or free_port()
    # Jails are set up as an unprivileged uid, which cannot enter pytest's private tmp folders.
    state = Path(tempfile.mkdtemp(prefix=f"e2bq-test-sandboxd-{port}-"))
    log = tmp / f"sandboxd-{port}.log"
    cmd = [
        sys.executable,
        "-m",
        "e2bq.sandboxd",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--api-key",
        API_KEY,
        "--state-dir",
        str(state),
        "--log-level",
        "warning",
        *extra,
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    host = SandboxHostProcess(proc, f"http://127.0.0.1:{port}", API_KEY, state, log)
    try:
        wait_for(
            lambda: proc.poll() is None and httpx.get(host.url + "/health").status_code == 200,
            60,
            f"sandboxd on port {port} (log: {log.read_text() if log.exists() else ''})",
        )
        yield host
    finally:
        stop(proc)
        unmount_under(state)  # a host killed by a test cannot unmount its sandboxes' disks itself
        shutil.rmtree(state, ignore_errors=True)


def unmount_under(folder: Path) -> None:
    """Lazily unmount every mount below ``folder`` (the sandboxes' disk images)."""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        target = line.split()[1]
        if target.startswith(str(folder) + "/"):
            subprocess.run(["umount", "-l", target], capture_output=True)


@contextlib.contextmanager
def redis_server(tmp: Path, *extra: str, port: int | None = None) -> Iterator[str]:
    """A private redis-server on ``port`` (a free one by default); yields its URL.

    Its folder is ``tmp/redis-<port>``: a server started again with the same ``tmp`` and ``port``
    reads what an earlier one persisted there (with ``--appendonly yes`` among ``extra``).
    """
    port = port or free_port()
    folder = tmp / f"redis-{port}"
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(folder), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        import redis

        wait_for(lambda: redis.Redis.from_url(url).ping(), 20, f"redis-server on port {port}")
        yield url
    finally:
        stop(proc)


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    name: str
    log: Path


def start_worker(tmp: Path, env: dict[str, str], *args: str, name: str | None = None) -> WorkerProcess:
    """A real ``e2bq worker`` subprocess; returns once it is ready to take tasks."""
    name = name or f"w{free_port()}"
    log = tmp / f"worker-{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "e2bq.cli", "worker", "--loglevel", "info", "-n", f"{name}@%h", *args],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env},
        )
    try:
        wait_for(
            lambda: proc.poll() is not None or " ready." in log.read_text(errors="replace"),
            60, f"worker {name} (log: {log})",
        )
    finally:
        if proc.poll() is None and " ready." not in log.read_text(errors="replace"):
            stop(proc)  # it never came up: do not leave it behind
    if proc.poll() is not None:
        raise RuntimeError(f"worker {name} exited with code {proc.returncode}: {log.read_text()[-2000:]}")
    return WorkerProcess(proc, name, log)


@contextlib.contextmanager
def worker(tmp: Path, env: dict[str, str], *args: str, name: str | None = None) -> Iterator[WorkerProcess]:
    running = start_worker(tmp, env, *args, name=name)
    try:
        yield running
    finally:
        stop(running.proc, grace=20)
