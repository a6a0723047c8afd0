"""envd's ``process.Process`` service: start, reconnect, list, feed and signal processes.

A process belongs to the sandbox, not to the stream that started it: closing the stream (the SDK's
60 s deadline, a client that went away) leaves it running, and ``Connect`` by pid or tag picks its
events up again. Each process leads its own process group, so a signal reaches its children too.

e2bq's background command jobs carry their job's id in the variable ``E2BQ_JOB_ID`` (an extension
of E2B's API; other processes are served exactly as E2B's envd serves them). Such a process is
started once per id: a second ``Start`` with the same id follows the process the first one started
— the worker that takes a job over after its worker died cannot run the command twice — and for
``RETAIN`` seconds after it ended, ``Connect`` by its pid and ``Start`` with its id still answer
with its end (its exit code), which the job would otherwise lose.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from ..config import AgentConfig
from ..errors import ConnectError
from ..oom import prefer_for_oom
from ..paths import resolve
from . import asroot, terminal
from .connect import Message, client_stream, server_stream, unary

_SIGNALS = {"SIGNAL_SIGKILL": signal.SIGKILL, "SIGNAL_SIGTERM": signal.SIGTERM}
_READ_CHUNK = 64 * 1024
_DRAIN_AFTER_EXIT = 0.5  # seconds to read what a finished process's orphans still write
KEEPALIVE: Message = {"event": {"keepalive": {}}}
TRUNCATED = b"\n[e2bq: output truncated]\n"
JOB_MARKER = "E2BQ_JOB_ID"
RETAIN = 900.0  # seconds an ended job process's end is kept for a late re-attach


@dataclass
class _Process:
    pid: int
    proc: asyncio.subprocess.Process
    config: Message
    tag: str | None
    max_output: int
    subscribers: set[asyncio.Queue[Message]] = field(default_factory=set)
    end: Message | None = None
    output_bytes: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    job: str | None = None  # its E2BQ_JOB_ID
    ended_at: float | None = None
    terminal: int | None = None  # a PTY session's master fd (see terminal.py)

    def info(self) -> Message:
        info: Message = {"config": self.config, "pid": self.pid}
        if self.tag:
            info["tag"] = self.tag
        return info

    async def publish(self, event: Message) -> None:
        for queue in list(self.subscribers):
            await queue.put(event)

    async def read(self, stream: asyncio.StreamReader | AsyncIterator[bytes], kind: str) -> None:
        """Forward a stream's output; past ``max_output`` bytes of it, mark the cut and drop the rest."""
        sent, cut = 0, False
        chunks = _chunks(stream) if isinstance(stream, asyncio.StreamReader) else stream
        async for chunk in chunks:
            if self.max_output:
                if cut:
                    continue  # keep draining so the process never blocks on a full pipe
                room = self.max_output - sent
                if len(chunk) > room:  # data is dropped from here on: say so, once
                    chunk, cut = chunk[:room] + TRUNCATED, True
                sent += len(chunk)
            self.output_bytes += len(chunk)
            await self.publish({"event": {"data": {kind: base64.b64encode(chunk).decode()}}})


async def _chunks(stream: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while chunk := await stream.read(_READ_CHUNK):
        yield chunk


def _subscribe(process: _Process) -> asyncio.Queue[Message]:
    queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=256)
    process.subscribers.add(queue)
    return queue


def _unsubscribe(launched: asyncio.Future[tuple[_Process, asyncio.Queue[Message]]]) -> None:
    """Nobody follows what a start that was cancelled launched: no events may pile up for it."""
    if not launched.cancelled() and launched.exception() is None:
        process, queue = launched.result()
        process.subscribers.discard(queue)


def _job_of(message: Message) -> str | None:
    """The E2BQ_JOB_ID a Start request's process carries, if any."""
    envs = (message.get("process") or {}).get("envs") or {}
    job = envs.get(JOB_MARKER) if isinstance(envs, dict) else None
    return str(job) if job else None


def _end_event(returncode: int) -> Message:
    end: Message = {"exited": returncode >= 0}
    if returncode >= 0:
        end["status"] = f"exit status {returncode}"
        if returncode:
            end["exitCode"] = returncode
    else:
        name = signal.Signals(-returncode).name.removeprefix("SIG").lower()
        end["status"] = f"signal: {'killed' if name == 'kill' else name}"
        end["exitCode"] = -1
    return {"event": {"end": end}}


async def _exec(
    message: Message, cmd: str, args: list[str], *, envs: dict[str, str], cwd: str, as_root: bool = False
) -> tuple[asyncio.subprocess.Process, int | None]:
    """The started process, and its terminal's master fd when the request asks for a PTY."""
    if message.get("pty"):
        rows, cols = terminal.size_of(message["pty"])
        return await terminal.spawn(
            cmd, args, env=envs, cwd=Path(cwd), rows=rows, cols=cols, controlling=not as_root
        )
    proc = await asyncio.create_subprocess_exec(
        cmd,
        *args,
        stdin=asyncio.subprocess.PIPE if message.get("stdin") else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=envs,
        start_new_session=True,
    )
    return proc, None


def _signal(process: _Process, sig: int) -> None:
    """``sig`` to the process's group; to its whole session if it is a PTY's shell."""
    if process.terminal is not None:
        terminal.signal_session(process.pid, sig)
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


class ProcessService:
    """Processes of one sandbox, by pid (the pid inside the sandbox) and by optional tag."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.processes: dict[int, _Process] = {}
        self.jobs: dict[str, _Process] = {}  # job processes by E2BQ_JOB_ID, running or ended lately
        self._job_starts = asyncio.Lock()

    def routes(self) -> list[BaseRoute]:
        prefix = "/process.Process/"
        stream = server_stream
        return [
            Route(prefix + "Start", stream(self.start, keepalive=KEEPALIVE), methods=["POST"]),
            Route(prefix + "Connect", stream(self.connect, keepalive=KEEPALIVE), methods=["POST"]),
            Route(prefix + "List", unary(self.list), methods=["POST"]),
            Route(prefix + "SendInput", unary(self.send_input), methods=["POST"]),
            Route(prefix + "StreamInput", client_stream(self.stream_input), methods=["POST"]),
            Route(prefix + "CloseStdin", unary(self.close_stdin), methods=["POST"]),
            Route(prefix + "SendSignal", unary(self.send_signal), methods=["POST"]),
            Route(prefix + "Update", unary(self.update), methods=["POST"]),
        ]

    async def close(self) -> None:
        for process in list(self.processes.values()):
            _signal(process, signal.SIGKILL)

    # -- streams -------------------------------------------------------------------------------

    async def start(self, message: Message, request: Request) -> AsyncIterator[Message]:
        # Shielded: a client that goes away while its process starts (a worker killed mid-call)
        # must not leave a process that runs unregistered, which no Connect, List or a second
        # Start of its job could find.
        as_root = asroot.serves_root(self.config, asroot.requested_user(request))
        launching = asyncio.ensure_future(self._launch(message, as_root=as_root))
        try:
            process, queue = await asyncio.shield(launching)
        except asyncio.CancelledError:
            launching.add_done_callback(_unsubscribe)
            raise
        async for event in self._follow(process, queue):
            yield event

    async def connect(self, message: Message, _: Request) -> AsyncIterator[Message]:
        process = self._select(message)
        async for event in self._follow(process):
            yield event

    async def _follow(
        self, process: _Process, queue: asyncio.Queue[Message] | None = None
    ) -> AsyncIterator[Message]:
        """The process's events from now on; ``queue``: already subscribed, since it started."""
        if queue is None:
            queue = _subscribe(process)
        try:
            yield {"event": {"start": {"pid": process.pid}}}
            if process.end is not None:
                yield process.end
                return
            while True:
                event = await queue.get()
                yield event
                if "end" in event["event"]:
                    return
        finally:
            process.subscribers.discard(queue)

    async def _launch(
        self, message: Message, *, as_root: bool = False
    ) -> tuple[_Process, asyncio.Queue[Message]]:
        """A new process, or for a job's (``E2BQ_JOB_ID``) the one a start of it made before, and
        a subscription to its events made before any of them is published."""
        job = _job_of(message)
        if job is None:
            process = await self._spawn(message, as_root=as_root)
            return process, _subscribe(process)
        async with self._job_starts:  # two starts of one job: the second follows the first's
            self._prune()
            process = self.jobs.get(job) or await self._spawn(message, as_root=as_root)
            process.job, self.jobs[job] = job, process
            return process, _subscribe(process)

    async def _spawn(self, message: Message, *, as_root: bool = False) -> _Process:
        spec: Message = message.get("process") or {}
        cmd = spec.get("cmd")
        if not cmd:
            raise ConnectError("invalid_argument", "process.cmd is required")
        args = [str(a) for a in spec.get("args", [])]
        envs = {**self.config.envs, **{str(k): str(v) for k, v in spec.get("envs", {}).items()}}
        home = asroot.ROOT_HOME if as_root else self.config.home
        cwd = resolve(spec["cwd"], home) if spec.get("cwd") else home
        if not cwd.is_dir():
            raise ConnectError("invalid_argument", f"working directory {cwd} does not exist")
        run, run_args, run_cwd = cmd, args, cwd
        if as_root:  # started by the root broker in ``cwd``, which its user may not enter
            (run, run_args), run_cwd = asroot.through_broker(self.config, cmd, args, cwd), self.config.home
        try:
            proc, master = await _exec(message, run, run_args, envs=envs, cwd=str(run_cwd), as_root=as_root)
        except OSError as exc:
            raise ConnectError("invalid_argument", f"cannot start {cmd}: {exc.strerror}") from exc
        prefer_for_oom(proc.pid)
        config: Message = {"cmd": cmd, "args": args, "envs": spec.get("envs", {}), "cwd": str(cwd)}
        process = _Process(proc.pid, proc, config, message.get("tag"), self.config.max_output_bytes)
        process.terminal = master
        self.processes[proc.pid] = process
        asyncio.get_running_loop().create_task(self._supervise(process))
        return process

    async def _supervise(self, process: _Process) -> None:
        proc = process.proc
        if process.terminal is not None:
            readers = [asyncio.create_task(process.read(terminal.output(process.terminal), "pty"))]
        else:
            assert proc.stdout is not None and proc.stderr is not None
            readers = [
                asyncio.create_task(process.read(proc.stdout, "stdout")),
                asyncio.create_task(process.read(proc.stderr, "stderr")),
            ]
        returncode = await proc.wait()
        _, pending = await asyncio.wait(readers, timeout=_DRAIN_AFTER_EXIT)
        for task in pending:  # orphans that keep the pipe open must not hold the end back
            task.cancel()
        if pending:
            await asyncio.wait(pending)  # a terminal's reader lets go of its fd before it closes
        if process.terminal is not None:
            terminal.close(process.terminal)
        process.end = _end_event(returncode)
        process.ended_at = time.monotonic()
        self.processes.pop(process.pid, None)
        await process.publish(process.end)
        process.done.set()

    # -- unary calls ---------------------------------------------------------------------------

    def _select(self, message: Message) -> _Process:
        selector: dict[str, Any] = message.get("process") or {}
        if "pid" in selector:
            process = self.processes.get(int(selector["pid"])) or self._ended_job(int(selector["pid"]))
            if process is None:
                raise ConnectError("not_found", f"process with pid {selector['pid']} not found")
            return process
        if "tag" in selector:
            for process in self.processes.values():
                if process.tag == selector["tag"]:
                    return process
            raise ConnectError("not_found", f"process with tag {selector['tag']} not found")
        raise ConnectError("invalid_argument", "process.pid or process.tag is required")

    def _ended_job(self, pid: int) -> _Process | None:
        """The job process with ``pid`` that ended last, if its end is still kept."""
        self._prune()
        ended = [p for p in self.jobs.values() if p.pid == pid and p.ended_at is not None]
        return max(ended, key=lambda p: p.ended_at or 0.0, default=None)

    def _prune(self) -> None:
        now = time.monotonic()
        for job, process in list(self.jobs.items()):
            if process.ended_at is not None and now - process.ended_at > RETAIN:
                del self.jobs[job]

    async def list(self, _: Message) -> Message:
        return {"processes": [p.info() for p in self.processes.values()]}

    async def send_input(self, message: Message) -> Message:
        await self._write_input(self._select(message), message.get("input") or {})
        return {}

    async def stream_input(self, messages: AsyncIterator[Message]) -> Message:
        """StreamInput: a ``start`` naming the process, then ``data`` events written in order as
        they arrive (``keepalive`` events are skipped)."""
        process: _Process | None = None
        async for message in messages:
            if "start" in message:
                process = self._select(message["start"])
            elif "data" in message:
                if process is None:
                    raise ConnectError("invalid_argument", "the stream must begin with a start event")
                await self._write_input(process, (message["data"] or {}).get("input") or {})
        return {}

    async def _write_input(self, process: _Process, given: Message) -> None:
        if given.get("pty") is not None:
            if process.terminal is None or process.end is not None:
                raise ConnectError("failed_precondition", "the process has no open PTY")
            await terminal.write(process.terminal, base64.b64decode(given["pty"]))
            return
        data = given.get("stdin")
        if data is None:
            raise ConnectError("invalid_argument", "input.stdin or input.pty is required")
        stdin = process.proc.stdin
        if stdin is None or stdin.is_closing():
            raise ConnectError("failed_precondition", "the process was not started with stdin open")
        stdin.write(base64.b64decode(data))
        await stdin.drain()

    async def close_stdin(self, message: Message) -> Message:
        stdin = self._select(message).proc.stdin
        if stdin is not None:
            stdin.close()
        return {}

    async def send_signal(self, message: Message) -> Message:
        process = self._select(message)
        sig = _SIGNALS.get(str(message.get("signal")))
        if sig is None:
            raise ConnectError("invalid_argument", f"unsupported signal {message.get('signal')!r}")
        _signal(process, sig)
        return {}

    async def update(self, message: Message) -> Message:
        """A PTY's new size (the SDK's ``pty.resize``)."""
        process = self._select(message)
        if not message.get("pty"):
            return {}
        rows, cols = terminal.size_of(message["pty"])
        if process.terminal is None or process.end is not None:
            raise ConnectError("failed_precondition", "the process has no PTY to resize")
        terminal.resize(process.terminal, rows, cols)
        return {}
