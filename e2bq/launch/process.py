"""What every launched process shares: a free port, a start that waits for readiness, a stop by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from ..errors import ConfigurationError

POLL_INTERVAL = 0.05  # seconds between two readiness checks
LOG_TAIL = 3000  # characters of a log quoted when a process does not come up


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at the moment of the call."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_free(port: int, what: str) -> None:
    """Raise ConfigurationError if something listens on 127.0.0.1:``port`` already: a readiness
    check would otherwise be answered by that listener instead of the process being started."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is no obstacle
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise ConfigurationError(f"{what} cannot listen on port {port}: it is in use ({exc})") from exc


def stop(proc: subprocess.Popen[bytes], *, grace: float = 10.0) -> None:
    """Stop ``proc`` by its PID: SIGTERM, then SIGKILL once ``grace`` seconds have passed.

    Harmless on a process that has already ended (it is only reaped). Raises
    ``subprocess.TimeoutExpired`` if the process outlives even a SIGKILL by ``grace`` seconds.
    """
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=grace)


@dataclass(frozen=True, kw_only=True)
class Process:
    """A child process started by one of ``e2bq.launch``'s ``start_*`` functions.

    It is a context manager that stops the process on exit; :meth:`stop` does the same at any
    time, and stopping twice, or stopping a process that already ended, is harmless.

    Attributes:
        name: what the process and its log are called (a worker's Celery node name before the ``@``).
        proc: the running child; ``proc.pid`` is the PID it is stopped by.
        log: the file that receives its stdout and stderr (appended to, so a process started
            again under the same name continues the earlier log).
        grace: seconds between SIGTERM and SIGKILL when it is stopped.
    """

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    grace: float = 10.0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        """Whether the process has not ended yet."""
        return self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after :attr:`grace` seconds (see :func:`stop`)."""
        stop(self.proc, grace=self.grace)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def spawn(
    cmd: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str] | None,
    ready: Callable[[], bool],
    timeout: float,
    what: str,
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` and return once ``ready()`` holds.

    The child inherits this process's environment plus ``env``; its stdout and stderr are appended to
    ``log``. ``ready`` is polled every 50 ms; an exception it raises counts as "not yet".

    Raises ConfigurationError, with the end of the log, when the child exits first or is not ready
    within ``timeout`` seconds; it is stopped before the error is raised (also on KeyboardInterrupt).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(cmd), stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    try:
        _wait_ready(proc, ready, timeout=timeout, what=what, log=log)
    except BaseException:
        stop(proc)
        raise
    return proc


def _wait_ready(
    proc: subprocess.Popen[bytes], ready: Callable[[], bool], *, timeout: float, what: str, log: Path
) -> None:
    deadline = time.monotonic() + timeout
    last_error = ""
    while True:
        if proc.poll() is not None:
            raise ConfigurationError(
                f"{what} exited with code {proc.returncode} while starting; {_tail(log)}"
            )
        try:
            if ready():
                return
        except Exception as exc:  # not listening yet, or answering with an error: try again
            last_error = f" (last check: {exc!r})"
        if time.monotonic() > deadline:
            raise ConfigurationError(
                f"{what} was not ready within {timeout:g} s{last_error}; {_tail(log)}"
            )
        time.sleep(POLL_INTERVAL)


def _tail(log: Path) -> str:
    try:
        text = log.read_text(errors="replace")[-LOG_TAIL:]
    except OSError:
        text = ""
    return f"its log {log} ends with:\n{text}"

