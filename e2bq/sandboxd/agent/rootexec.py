"""Run one command as root inside the sandbox through its root broker; stand in for it meanwhile.

``python -I -S rootexec.py SOCKET CWD -- ARGV...``, started by envd as the sandbox's user for
``commands.run(..., user="root")``. It hands its own stdin, stdout and stderr to the broker (see
``rootbroker``), which starts ARGV as root with them: the output reaches envd's pipes directly.
This process stays envd's child for the command's life: the signals envd sends its group are
passed on to the command's group, and it ends as the command ended (its exit code, or killed by
the same signal), so envd reports the command's end. Killed itself, its connection closes and
the broker kills the command's group.

Run as a script by path (``-I -S``: nothing but the standard library is imported).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import time

TYPE_CHECKING = False  # typing itself is not imported: the broker stays resident in every jail
if TYPE_CHECKING:
    from typing import Any, NoReturn

_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
_MAX_MESSAGE = 1 << 20


def _receive(conn: socket.socket) -> dict[str, Any]:
    data = conn.recv(_MAX_MESSAGE)
    if not data:
        raise ConnectionError("the root broker went away")
    message: dict[str, Any] = json.loads(data)
    return message


def _end(message: dict[str, Any]) -> NoReturn:
    if "signaled" in message:
        signum = int(message["signaled"])
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    os._exit(int(message.get("exit", 1)) & 0xFF)


def _connect(conn: socket.socket, path: str) -> None:
    """Connect, waiting up to 2 s for a broker forked in just now to listen."""
    for _ in range(200):
        try:
            conn.connect(path)
            return
        except (FileNotFoundError, ConnectionRefusedError):
            time.sleep(0.01)
    conn.connect(path)


def main(args: list[str]) -> NoReturn:
    path, cwd, separator, argv = args[0], args[1], args[2], args[3:]
    if separator != "--" or not argv:
        sys.exit("usage: rootexec.py SOCKET CWD -- ARGV...")
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        _connect(conn, path)
        request = {"argv": argv, "env": dict(os.environ), "cwd": cwd}
        socket.send_fds(conn, [json.dumps(request).encode()], [0, 1, 2])
        started = _receive(conn)
    except (OSError, ValueError) as exc:
        os.write(2, f"cannot run as root: {exc}\n".encode())
        os._exit(126)
    if "pid" not in started:
        os.write(2, f"cannot run as root: {started.get('error')}\n".encode())
        os._exit(126)

    def forward(signum: int, _: object) -> None:
        with contextlib.suppress(OSError):
            conn.send(json.dumps({"signal": signum}).encode())

    for signum in _FORWARDED:
        signal.signal(signum, forward)
    # The command holds the pipes now: envd's reads end when it (and what it started) closes them.
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    try:
        while True:
            message = _receive(conn)
            if "exit" in message or "signaled" in message:
                _end(message)
    except (OSError, ValueError):
        os._exit(255)


if __name__ == "__main__":
    main(sys.argv[1:])
