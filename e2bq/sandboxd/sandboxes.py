"""The live sandboxes of one host: create, look up, extend, expire and kill them.

Each sandbox is a jail running the agent; sandboxd keeps, per sandbox, its tokens, its lifetime,
an HTTP client to the agent's unix socket and the ports it has published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from . import jail
from .ports import PortPublisher
from .settings import HostSettings

log = logging.getLogger("e2bq.sandboxd")

TEMPLATES = ("code-interpreter-v1", "base", "code-interpreter")
ENVD_VERSION = "0.6.4"
CLIENT_ID = "e2bq-local"


class HostError(Exception):
    """An error answered on the control plane as E2B does: ``{"code": status, "message"}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def new_sandbox_id() -> str:
    return "i" + secrets.token_hex(10)[:19]


@dataclass
class Sandbox:
    sandbox_id: str
    template_id: str
    metadata: dict[str, str]
    envs: dict[str, str]
    started_at: float
    end_at: float
    access_token: str
    traffic_token: str
    paths: jail.JailPaths
    proc: subprocess.Popen[bytes]
    client: httpx.AsyncClient
    ports: PortPublisher
    state: str = "running"
    killed: asyncio.Event = field(default_factory=asyncio.Event)

    def summary(self) -> dict[str, Any]:
        return {
            "templateID": self.template_id,
            "alias": self.template_id,
            "sandboxID": self.sandbox_id,
            "clientID": CLIENT_ID,
            "startedAt": _iso(self.started_at),
            "endAt": _iso(self.end_at),
            "cpuCount": os.cpu_count() or 1,
            "memoryMB": 512,
            "diskSizeMB": 1024,
            "state": self.state,
            "envdVersion": ENVD_VERSION,
            "metadata": self.metadata,
        }

    def detail(self) -> dict[str, Any]:
        return {**self.summary(), "envdAccessToken": self.access_token, "domain": None}

    def created(self) -> dict[str, Any]:
        return {
            "templateID": self.template_id,
            "sandboxID": self.sandbox_id,
            "clientID": CLIENT_ID,
            "envdVersion": ENVD_VERSION,
            "envdAccessToken": self.access_token,
            "trafficAccessToken": self.traffic_token,
            "domain": None,
        }


class SandboxHost:
    """Every sandbox of this sandboxd, and the folder they live in."""

    def __init__(self, settings: HostSettings) -> None:
        self.settings = settings
        self.sandboxes: dict[str, Sandbox] = {}
        self._own_state_dir = settings.state_dir is None
        self.state_dir = settings.state_dir or Path(tempfile.mkdtemp(prefix="e2bq-sandboxd-"))
        self.uid: int | None = settings.sandbox_uid if os.geteuid() == 0 else None
        self._sweeper: asyncio.Task[None] | None = None
        self._creating = 0

    # -- lifecycle of the host -----------------------------------------------------------------

    async def start(self) -> None:
        if not self.settings.python.exists():
            raise RuntimeError(
                f"sandbox runtime {self.settings.runtime} is missing: "
                "run `e2bq sandboxd install-runtime` (or set E2BQ_SANDBOX_RUNTIME)"
            )
        if shutil.which("bwrap") is None:
            raise RuntimeError("bubblewrap is not installed: apt-get install -y bubblewrap")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.chmod(0o711)
        if self.uid is not None:
            _check_traversable(self.state_dir)
        for leftover in self.state_dir.glob("i*"):  # jails of an earlier run that died
            shutil.rmtree(leftover, ignore_errors=True)
        jail.write_etc(self.etc)
        shutil.rmtree(self.agent_lib, ignore_errors=True)
        source = Path(__file__).parent / "agent"
        shutil.copytree(
            source, self.agent_lib / "agent", ignore=shutil.ignore_patterns("__pycache__")
        )
        for path in [self.agent_lib, *self.agent_lib.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        self._sweeper = asyncio.create_task(self._sweep())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        await asyncio.gather(*(self.kill(sid) for sid in list(self.sandboxes)))
        if self._own_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    @property
    def etc(self) -> Path:
        return self.state_dir / "etc"

    @property
    def agent_lib(self) -> Path:
        return self.state_dir / "lib"

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            now = time.time()
            for sandbox in list(self.sandboxes.values()):
                if sandbox.end_at <= now:
                    log.info("sandbox %s expired", sandbox.sandbox_id)
                    await self.kill(sandbox.sandbox_id)
                elif sandbox.proc.poll() is not None:
                    log.warning("sandbox %s's jail exited unexpectedly", sandbox.sandbox_id)
                    await self.kill(sandbox.sandbox_id)

    # -- sandboxes -----------------------------------------------------------------------------

    def clamp_timeout(self, timeout: Any) -> int:
        if timeout is None:
            return self.settings.default_timeout
        if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 0:
            raise HostError(400, f"timeout must be a whole number of seconds >= 0, not {timeout!r}")
        if timeout > self.settings.max_timeout:
            raise HostError(
                400,
                f"timeout {timeout}s is longer than this host allows ({self.settings.max_timeout}s)",
            )
        return timeout

    async def create(
        self, template_id: str, timeout: int, metadata: dict[str, str], envs: dict[str, str]
    ) -> Sandbox:
        if template_id not in TEMPLATES:
            raise HostError(
                404, f"template '{template_id}' not found; this host serves {TEMPLATES}"
            )
        if len(self.sandboxes) + self._creating >= self.settings.max_sandboxes:
            raise HostError(
                429,
                f"this host runs at most {self.settings.max_sandboxes} sandboxes at once; "
                "kill one or raise E2BQ_SANDBOXD_MAX_SANDBOXES",
            )
        self._creating += 1
        try:
            return await self._start(template_id, timeout, metadata, envs)
        finally:
            self._creating -= 1

    async def _start(
        self, template_id: str, timeout: int, metadata: dict[str, str], envs: dict[str, str]
    ) -> Sandbox:
        sandbox_id = new_sandbox_id()
        paths = jail.JailPaths(self.state_dir / sandbox_id)
        proc, ready_fd = jail.spawn(
            paths,
            envs=envs,
            etc=self.etc,
            runtime=self.settings.runtime,
            agent_lib=self.agent_lib,
            uid=self.uid,
        )
        try:
            await self._wait_ready(proc, ready_fd, paths)
        except BaseException:
            _kill_jail(proc)
            paths.remove()
            raise
        now = time.time()
        transport = httpx.AsyncHTTPTransport(uds=str(paths.socket))
        sandbox = Sandbox(
            sandbox_id=sandbox_id,
            template_id=template_id,
            metadata=metadata,
            envs=envs,
            started_at=now,
            end_at=now + timeout,
            access_token=secrets.token_hex(16),
            traffic_token=secrets.token_hex(16),
            paths=paths,
            proc=proc,
            client=httpx.AsyncClient(transport=transport, base_url="http://sandbox", timeout=None),
            ports=PortPublisher(
                paths.forward_socket, self.settings.host, self.settings.advertised_host
            ),
        )
        self.sandboxes[sandbox_id] = sandbox
        log.info("sandbox %s created (template %s, %ss)", sandbox_id, template_id, timeout)
        return sandbox

    async def _wait_ready(
        self, proc: subprocess.Popen[bytes], ready_fd: int, paths: jail.JailPaths
    ) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[bytes] = loop.create_future()

        def on_readable() -> None:
            if not ready.done():
                ready.set_result(os.read(ready_fd, 1))

        loop.add_reader(ready_fd, on_readable)
        try:
            signal_byte = await asyncio.wait_for(ready, self.settings.ready_timeout)
        except TimeoutError as exc:
            raise HostError(500, "the sandbox did not start in time") from exc
        finally:
            loop.remove_reader(ready_fd)
            os.close(ready_fd)
        if signal_byte != b"1":  # the pipe closed: the jail died before its agent was up
            await loop.run_in_executor(None, _wait_quietly, proc)
            stderr = paths.log.read_text(errors="replace") if paths.log.exists() else ""
            raise HostError(500, f"the sandbox failed to start: {stderr[-2000:]}")

    def get(self, sandbox_id: str) -> Sandbox:
        sandbox = self.sandboxes.get(sandbox_id)
        if sandbox is None or sandbox.end_at <= time.time():
            raise HostError(404, f"sandbox {sandbox_id} not found")
        return sandbox

    def set_timeout(self, sandbox_id: str, timeout: int) -> None:
        self.get(sandbox_id).end_at = time.time() + timeout

    async def kill(self, sandbox_id: str) -> bool:
        sandbox = self.sandboxes.pop(sandbox_id, None)
        if sandbox is None:
            return False
        sandbox.state = "killed"
        sandbox.killed.set()
        await sandbox.ports.close()
        await asyncio.get_running_loop().run_in_executor(None, _kill_jail, sandbox.proc)
        with contextlib.suppress(Exception):
            await sandbox.client.aclose()
        sandbox.paths.remove()
        log.info("sandbox %s killed", sandbox_id)
        return True


def _check_traversable(folder: Path) -> None:
    """Jails are set up as the unprivileged sandbox uid, which must reach the state folder."""
    for parent in [folder, *folder.parents]:
        if not parent.stat().st_mode & 0o001:
            raise RuntimeError(
                f"the sandboxes' uid cannot reach {folder}: {parent} is not searchable by others; "
                "choose another --state-dir (E2BQ_SANDBOXD_STATE_DIR) or chmod o+x it"
            )


def _kill_jail(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the jail; return once none of its processes runs any more.

    The signal goes to the jail's init (bwrap's child, pid 1 inside). When the init of a PID
    namespace dies, the kernel kills every other process in it and lets the init's parent reap
    it only once they have all exited; bwrap exits when its child is reaped, so bwrap's exit
    means the jail is empty. Killing bwrap itself returns sooner, while the jail's processes
    may still run and write into the sandbox's folder. Blocks: call it from a worker thread.
    """
    if proc.poll() is not None:
        return
    inits = _children(proc.pid)
    for pid in inits:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if inits:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    if proc.poll() is None:  # no init found, or bwrap did not follow it
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (from /proc; empty when the kernel does not list them)."""
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _wait_quietly(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
