"""The in-sandbox agent as a real process on the host (no jail), driven over its unix socket.

``start_agent`` runs ``agent.server.main`` with the sandbox runtime's Python, waits for the byte it
writes when its socket listens, and kills it by PID at the end. ``tcp_bridge`` exposes the socket on a
loopback port, so that the e2b SDK's own clients (which speak TCP only) can drive the agent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import select
import shutil
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2b.api.client_sync import get_envd_api
from e2b.connection_config import ConnectionConfig
from e2b.sandbox_sync.filesystem.filesystem import Filesystem
from packaging.version import Version

from tests.procs import API_KEY, stop

REPO = Path(__file__).resolve().parents[3]
AGENT = REPO / "e2bq" / "sandboxd" / "agent"
RUNTIME_PYTHON = "/opt/e2bq/runtime/bin/python"
START_TIMEOUT = 30.0
SDK_ENVD_VERSION = "0.6.4"  # what sandboxd announces; it decides which requests the SDK sends


@dataclass
class AgentProcess:
    """A running agent: its process, its user's home and the socket it serves HTTP on."""

    proc: subprocess.Popen[bytes]
    home: Path
    socket: Path
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def client(self, timeout: float = 60.0) -> httpx.Client:
        """An httpx client speaking to the agent over its unix socket (close it when done)."""
        transport = httpx.HTTPTransport(uds=str(self.socket))
        return httpx.Client(transport=transport, base_url="http://agent", timeout=timeout)

    def memory_kib(self, field: str) -> int:
        """A ``/proc/<pid>/status`` figure in KiB: ``VmRSS`` now, ``VmHWM`` the peak so far."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)


def _wait_ready(read_fd: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"agent not ready after {START_TIMEOUT}s: {log.read_text()}")
        readable, _, _ = select.select([read_fd], [], [], remaining)
        if readable:
            if os.read(read_fd, 1):
                return
            proc.wait(timeout=START_TIMEOUT)
            raise RuntimeError(f"agent exited with {proc.returncode}: {log.read_text()}")


@contextlib.contextmanager
def start_agent(
    tmp: Path, *, env: dict[str, str] | None = None, wrap: Sequence[str] = (), **config: Any
) -> Iterator[AgentProcess]:
    """Run an agent whose home lives under ``tmp``; ``config`` overrides AgentConfig fields
    (``start_kernel`` defaults to False), ``env`` adds to its environment and ``wrap`` is a command
    prefix that ends by exec'ing the agent (e.g. ``unshare``), so the PID stays the agent's."""
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    run = Path(tempfile.mkdtemp(prefix="e2bq-agent-"))  # short: unix socket paths are limited
    settings = {
        "home": str(home),
        "python": RUNTIME_PYTHON,
        "socket": str(run / "agent.sock"),
        "forward_socket": str(run / "forward.sock"),
        "start_kernel": False,
        **config,
    }
    lib = run / "lib"  # as in the jail: a folder holding the agent's package alone
    lib.mkdir()
    (lib / "agent").symlink_to(AGENT)
    config_path = run / "agent.json"
    config_path.write_text(json.dumps(settings))
    log = tmp / "agent.log"
    read_fd, write_fd = os.pipe()
    code = (
        f"import sys; sys.path.insert(0, {str(lib)!r}); "
        f"from agent.server import main; main([{str(config_path)!r}, {str(write_fd)!r}])"
    )
    try:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [*wrap, RUNTIME_PYTHON, "-I", "-c", code],
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                env={**os.environ, **(env or {})},
                cwd=home,
            )
        os.close(write_fd)
        write_fd = -1
        agent = AgentProcess(proc, home, Path(settings["socket"]), log)
        try:
            _wait_ready(read_fd, proc, log)
            yield agent
        finally:
            stop(proc, grace=5)
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
        shutil.rmtree(run, ignore_errors=True)


class _Relay(socketserver.BaseRequestHandler):
    server: _Bridge

    def handle(self) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as upstream:
            upstream.connect(self.server.target)
            back = threading.Thread(target=_pump, args=(upstream, self.request), daemon=True)
            back.start()
            _pump(self.request, upstream)
            back.join(timeout=30)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(256 * 1024):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


class _Bridge(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, target: Path) -> None:
        self.target = str(target)
        super().__init__(("127.0.0.1", 0), _Relay)


@contextlib.contextmanager
def tcp_bridge(target: Path) -> Iterator[str]:
    """``http://127.0.0.1:<port>``, relaying every TCP connection to the unix socket ``target``."""
    bridge = _Bridge(target)
    thread = threading.Thread(target=bridge.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{bridge.server_address[1]}"
    finally:
        bridge.shutdown()
        bridge.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    """One agent for the test module (tests work in their own folder: see ``workdir``)."""
    with start_agent(tmp_path_factory.mktemp("agent")) as running:
        yield running


@pytest.fixture
def client(agent: AgentProcess) -> Iterator[httpx.Client]:
    with agent.client() as http:
        yield http


@pytest.fixture
def workdir(agent: AgentProcess, request: pytest.FixtureRequest) -> Path:
    """A fresh folder in the agent's home for this test alone (named after it, whatever the bytes
    in its parameters' ids)."""
    name: str = request.node.name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    readable = re.sub(r"[^\w.-]+", "-", name)[:100]
    path = agent.home / f"{readable}-{digest}"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def sdk_files(agent: AgentProcess) -> Iterator[Filesystem]:
    """The e2b SDK's own ``Sandbox.files`` client, pointed at the agent through a TCP bridge."""
    with tcp_bridge(agent.socket) as url:
        config = ConnectionConfig(api_key=API_KEY, request_timeout=30)
        yield Filesystem(url, Version(SDK_ENVD_VERSION), config, get_envd_api(config, url))
