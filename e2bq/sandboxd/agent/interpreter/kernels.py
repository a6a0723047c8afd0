"""One IPython kernel, run as a child process of the agent (or forked in by sandboxd and adopted,
see ``adoption``), and the client that talks to it.

The kernel leads its own process group, so an interrupt (SIGINT) or a kill reaches whatever it
started too. Its connection file and ZMQ sockets (``ipc`` transport: no ports, and the jail's own
network namespace does not matter) live in the agent's private runtime folder, not in the user's
home. Its environment is the sandbox's (``AgentConfig.envs``), never the agent's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from queue import Empty
from typing import Any

import zmq.asyncio
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.connect import write_connection_file

from ..errors import KernelDied, KernelError
from ..oom import prefer_for_oom
from . import kernel_startup
from .adoption import UNKNOWN_EXIT, Adoptable, AdoptedProcess
from .languages import LANGUAGES, Language, runtime_of

log = logging.getLogger(__name__)

Message = dict[str, Any]

READY_TIMEOUT = 60.0  # seconds for a new kernel to answer kernel_info
POLL = 0.2  # seconds between checks for interrupts and a dead kernel while waiting for output
REPLY_TIMEOUT = 5.0  # seconds to wait for an execute_reply once the kernel is idle
_PF_EXITING = 0x4  # /proc/<pid>/stat flags: the process is exiting
REINTERRUPT_EVERY = 2.0  # seconds between SIGINTs while an interrupted cell keeps running
INTERRUPT_GIVE_UP = 10.0  # seconds after the first SIGINT before the kernel is killed
STOP_TIMEOUT = 5.0  # seconds to wait for a killed kernel to be reaped
STDERR_TAIL = 4096  # bytes of the kernel's own stderr kept to explain a failed start


def kernel_env(envs: dict[str, str], runtime_dir: Path) -> dict[str, str]:
    """The environment a kernel starts with: the sandbox's variables plus kernel settings.

    Figures display inline at the end of a cell, OpenBLAS starts a few threads rather than one per
    host CPU, and IPython keeps its history out of the user's home; the sandbox's own values win.
    ``JPY_PARENT_PID`` makes the kernel exit if the agent dies.
    """
    env = dict(envs)
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    env.setdefault("OPENBLAS_NUM_THREADS", str(min(4, len(os.sched_getaffinity(0)))))
    env.setdefault("IPYTHONDIR", str(runtime_dir / "ipython"))
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # silences debugpy's startup warning
    env["JPY_PARENT_PID"] = str(os.getpid())
    return env


class Kernel:
    """A kernel process and its client. Not safe for concurrent executions: callers serialize."""

    def __init__(
        self,
        python: str,
        *,
        env: dict[str, str],
        cwd: Path,
        runtime_dir: Path,
        zmq_context: zmq.asyncio.Context,
        language: Language | None = None,
    ) -> None:
        self.python = python
        self.language = language or LANGUAGES["python"]
        self.env = env
        self.cwd = cwd
        self.runtime_dir = runtime_dir
        self._zmq_context = zmq_context
        self._proc: asyncio.subprocess.Process | AdoptedProcess | None = None
        self._client: AsyncKernelClient | None = None
        self._name = ""
        self._stderr_task: asyncio.Task[None] | None = None
        self._stderr_tail = b""
        self._kill_reason: str | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def exited(self) -> bool:
        """Whether the kernel is dead or dying, even when its exit is not noticed yet: killed from
        inside the sandbox a moment ago, it still has a SIGKILL pending, or is exiting, or is a
        zombie until the event loop reaps it."""
        if not self.running:
            return True
        assert self._proc is not None
        proc = Path(f"/proc/{self._proc.pid}")
        try:
            fields = (proc / "stat").read_text().rpartition(")")[2].split()
            status = (proc / "status").read_text()
        except OSError:
            return True  # reaped already
        if fields[0] in ("Z", "X") or int(fields[6]) & _PF_EXITING:
            return True
        pending = [line.split()[1] for line in status.splitlines() if line.startswith(("SigPnd:", "ShdPnd:"))]
        return any(int(mask, 16) & (1 << (signal.SIGKILL - 1)) for mask in pending)

    async def start(self, adopt: Adoptable | None = None) -> None:
        """Launch the kernel (or take over the forked one ``adopt`` names), wait until it answers
        and set it up. Raises KernelError."""
        self._kill_reason = None
        self._stderr_tail = b""
        if adopt is not None:
            try:
                self._proc = AdoptedProcess(adopt["pid"])
            except OSError as exc:
                log.warning("the forked kernel is gone (%s): starting one", exc)
            else:
                connection_file = Path(adopt["connection_file"])
                self._name = connection_file.stem
                self._client = AsyncKernelClient(context=self._zmq_context)
                self._client.load_connection_file(str(connection_file))
                await self._connect()
                return
        self._name = f"kernel-{uuid.uuid4().hex[:12]}"
        connection_file = self.runtime_dir / f"{self._name}.json"
        ipc = self.language.transport == "ipc"
        _, info = write_connection_file(
            str(connection_file),
            # ipc: sockets are files named <ip>-<port>; tcp: the jail's own loopback, for kernels
            # that write ipc addresses their own way (ports are free ones of the jail's namespace)
            transport=self.language.transport,
            ip=str(self.runtime_dir / self._name) if ipc else "127.0.0.1",
            key=secrets.token_hex(16).encode(),
        )
        proc = await self._launch(connection_file)
        self._proc = proc
        assert proc.stderr is not None
        self._stderr_task = asyncio.create_task(self._keep_stderr_tail(proc.stderr))
        self._client = AsyncKernelClient(context=self._zmq_context)
        self._client.load_connection_info(info)
        await self._connect()

    async def _connect(self) -> None:
        client = self._require_client()
        client.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=False)
        try:
            await self._wait_ready()
            await self._install_startup()
        except BaseException:
            await self.stop()
            raise

    async def _launch(self, connection_file: Path) -> asyncio.subprocess.Process:
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.language.argv(runtime_of(self.python), self.python, str(connection_file)),
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # its own process group, for interrupts and kills
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,  # it echoes low-level output here too: keep a tail
            )
        except OSError as exc:
            raise KernelError(f"cannot start the {self.language.kernel} kernel in {self.cwd}: {exc}") from exc
        prefer_for_oom(proc.pid)
        return proc

    async def restart(self) -> None:
        """A fresh kernel in place of this one (all state is lost)."""
        await self.stop()
        await self.start()

    def interrupt(self) -> None:
        """SIGINT to the kernel's process group: a running cell raises KeyboardInterrupt."""
        self._signal(signal.SIGINT)

    def kill(self, reason: str) -> None:
        """SIGKILL to the kernel's process group, now; ``reason`` explains it to a waiting cell."""
        self._kill_reason = reason
        self._signal(signal.SIGKILL)

    async def stop(self) -> None:
        """Kill the kernel and everything in its process group, reap it, and close its client."""
        proc, self._proc = self._proc, None
        if proc is not None:
            self._kill_reason = self._kill_reason or "the kernel was stopped"
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
        if self._stderr_task is not None:
            self._stderr_task.cancel()
            self._stderr_task = None
        if self._client is not None:
            self._client.stop_channels()
            self._client = None
        if self._name:
            for path in self.runtime_dir.glob(f"{self._name}*"):  # connection file and sockets
                path.unlink(missing_ok=True)

    def execute(self, code: str, *, silent: bool = False) -> str:
        """Send ``code`` for execution; returns the request's message id."""
        msg_id: str = self._require_client().execute(
            code,
            silent=silent,
            store_history=not silent,
            allow_stdin=False,
            # tslab, once asked to stop on an error, aborts every later request: only ipykernel's
            # stop (which aborts what is queued at the time) is what E2B's Python does
            stop_on_error=self.language.name == "python",
        )
        return msg_id

    async def messages(self, msg_id: str, stop: asyncio.Event | None = None) -> AsyncIterator[Message]:
        """The iopub messages answering ``msg_id``, until the kernel is idle again.

        Once ``stop`` is set the cell is interrupted, again every REINTERRUPT_EVERY seconds, and
        after INTERRUPT_GIVE_UP seconds the kernel is killed. Raises KernelDied if the kernel
        exits before it is idle.
        """
        client = self._require_client()
        loop = asyncio.get_running_loop()
        first_sigint: float | None = None
        last_sigint = 0.0
        while True:
            if stop is not None and stop.is_set():
                now = loop.time()
                if first_sigint is not None and now - first_sigint > INTERRUPT_GIVE_UP:
                    self.kill(f"the code ignored interrupts for {INTERRUPT_GIVE_UP:g} s")
                elif now - last_sigint > REINTERRUPT_EVERY:
                    first_sigint = now if first_sigint is None else first_sigint
                    last_sigint = now
                    self.interrupt()
            try:
                message: Message = await client.get_iopub_msg(timeout=POLL)
            except Empty:
                self._raise_if_dead()
                continue
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            if message["msg_type"] == "status":
                if message["content"].get("execution_state") == "idle":
                    return
                continue
            yield message

    async def reply(self, msg_id: str) -> Message | None:
        """The content of the shell reply to ``msg_id`` (None if none came in REPLY_TIMEOUT)."""
        client = self._require_client()
        deadline = asyncio.get_running_loop().time() + REPLY_TIMEOUT
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                message: Message = await client.get_shell_msg(timeout=left)
            except Empty:
                return None
            if message["parent_header"].get("msg_id") == msg_id:
                content: Message = message["content"]
                return content
        return None

    async def run_silent(self, code: str) -> Message | None:
        """Run ``code`` without output or history; returns its execute_reply content."""
        msg_id = self.execute(code, silent=True)
        async for _ in self.messages(msg_id):
            pass
        return await self.reply(msg_id)

    def _require_client(self) -> AsyncKernelClient:
        if self._client is None:
            raise KernelError("the kernel is not running")
        return self._client

    def _signal(self, signum: signal.Signals) -> None:
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signum)

    def _raise_if_dead(self) -> None:
        if self._proc is None:
            raise KernelDied(self._kill_reason or "the kernel was stopped")
        code = self._proc.returncode
        if code is None:
            return
        if self._kill_reason:
            raise KernelDied(self._kill_reason)
        if code == UNKNOWN_EXIT:
            raise KernelDied("the kernel exited or was killed (out of memory?)")
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        if code == -signal.SIGKILL:
            how += " (out of memory?)"
        tail = self._stderr_tail.decode(errors="replace")
        tail = tail.replace(kernel_startup.DRAIN_MARK, "").strip()
        raise KernelDied(f"the kernel {how}" + (f": {tail[-1000:]}" if tail else ""))

    async def _wait_ready(self) -> None:
        client = self._require_client()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT
        while loop.time() < deadline:
            client.kernel_info()
            try:
                reply: Message = await client.get_shell_msg(timeout=1.0)
                if reply["msg_type"] == "kernel_info_reply":
                    await client.get_iopub_msg(timeout=POLL)  # iopub is connected too
                    return
            except Empty:
                pass
            self._raise_if_dead()
        raise KernelError(f"the kernel did not answer within {READY_TIMEOUT:g} s")

    async def _install_startup(self) -> None:
        if self.language.name != "python":
            if self.language.startup is not None:
                await self.run_silent(self.language.startup(self.env))
            return
        source = Path(kernel_startup.__file__).read_text()
        reply = await self.run_silent(kernel_startup.bootstrap_code(source))
        if reply is None or reply.get("status") != "ok":
            detail = reply and f"{reply.get('ename')}: {reply.get('evalue')}"
            log.warning("kernel setup failed (no charts or data results): %s", detail)

    async def _keep_stderr_tail(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(STDERR_TAIL):
            self._stderr_tail = (self._stderr_tail + chunk)[-STDERR_TAIL:]
