"""Pseudo-terminals for envd's PTY sessions (the SDK's ``sandbox.pty``).

A PTY session is a process whose stdin, stdout and stderr are the slave side of a new
pseudo-terminal, which is also its controlling terminal: it leads a session of its own, so an
interactive shell gets job control, ``stty`` and SIGWINCH on resize as in a real terminal. The agent
keeps the master side: what the process writes is read there, what the caller types is written
there, and a resize is ``TIOCSWINSZ`` on it (the kernel signals the foreground job).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import struct
import termios
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConnectError

_READ_CHUNK = 64 * 1024
_WRITE_PATIENCE = 5.0  # seconds a full terminal input buffer may keep a caller's keystrokes waiting
_MAX_SIDE = 10_000  # rows or columns: more is a caller's mistake, not a terminal


def size_of(pty: Mapping[str, Any]) -> tuple[int, int]:
    """``(rows, cols)`` of a request's ``pty`` message; an error the caller can act on otherwise."""
    size = pty.get("size") or {}
    try:
        rows, cols = int(size.get("rows", 0)), int(size.get("cols", 0))
    except (TypeError, ValueError) as exc:
        raise ConnectError("invalid_argument", "pty.size.rows and pty.size.cols must be integers") from exc
    if not (0 < rows <= _MAX_SIDE and 0 < cols <= _MAX_SIDE):
        raise ConnectError("invalid_argument", f"pty.size must be 1..{_MAX_SIDE} rows and columns")
    return rows, cols


def resize(master: int, rows: int, cols: int) -> None:
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _take_terminal() -> None:
    """In the child, after ``setsid``: stdin, the slave, becomes the controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


async def spawn(
    cmd: str,
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    rows: int,
    cols: int,
    controlling: bool = True,
) -> tuple[asyncio.subprocess.Process, int]:
    """Start ``cmd`` on a new pseudo-terminal of ``rows`` x ``cols``; the process and the master fd.
    Without ``controlling`` the terminal is not made its controlling one (a stand-in for a process
    the root broker starts, which takes it instead: see ``rootexec``).

    Raises OSError when the command cannot be started (the master is closed then).
    """
    master, slave = os.openpty()
    try:
        resize(master, rows, cols)
        os.set_blocking(master, False)
        proc = await asyncio.create_subprocess_exec(
            cmd,
            *args,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
            preexec_fn=_take_terminal if controlling else None,
        )
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)  # the child holds it now: the master sees EIO once every holder is gone
    return proc, master


async def output(master: int) -> AsyncIterator[bytes]:
    """What the terminal's processes write, until the last of them closes the slave (EIO).

    A read of a master returns at most what one flip of the tty's buffer holds (about 4 KB):
    what is there already is gathered, up to ``_READ_CHUNK``, into one event.
    """
    loop = asyncio.get_running_loop()
    readable = asyncio.Event()
    loop.add_reader(master, readable.set)
    try:
        while True:
            chunk, ended = _gather(master)
            if chunk:
                yield chunk
            if ended:
                return
            if not chunk:
                readable.clear()
                await readable.wait()
    finally:
        loop.remove_reader(master)


def _gather(master: int) -> tuple[bytes, bool]:
    """What the master has to read now, and whether the terminal has closed."""
    gathered = bytearray()
    while len(gathered) < _READ_CHUNK:
        try:
            chunk = os.read(master, _READ_CHUNK - len(gathered))
        except BlockingIOError:
            return bytes(gathered), False
        except OSError as exc:
            if exc.errno == errno.EIO:  # Linux's answer on a master whose slave is closed
                return bytes(gathered), True
            raise
        if not chunk:
            return bytes(gathered), True
        gathered += chunk
    return bytes(gathered), False


async def write(master: int, data: bytes) -> None:
    """Type ``data`` into the terminal, waiting while its input buffer is full (a process that does
    not read); ``deadline_exceeded`` (the SDK's TimeoutException) if it stays full."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _WRITE_PATIENCE
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(master, view) :]
        except BlockingIOError:
            if loop.time() > deadline:
                message = f"the terminal has not read its input for {_WRITE_PATIENCE:.0f} s"
                raise ConnectError("deadline_exceeded", message) from None
            await asyncio.sleep(0.01)
        except OSError as exc:
            raise ConnectError("failed_precondition", f"the terminal is closed: {exc.strerror}") from exc


def signal_session(leader: int, sig: int) -> None:
    """``sig`` to every process of the session ``leader`` leads: an interactive shell puts each job
    in a process group of its own, and a job in the background outlives a SIGHUP."""
    groups = {leader}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.getsid(int(entry.name)) == leader:
                    groups.add(os.getpgid(int(entry.name)))
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, sig)


def close(master: int) -> None:
    with contextlib.suppress(OSError):
        os.close(master)
