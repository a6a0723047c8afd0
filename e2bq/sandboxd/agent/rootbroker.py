"""The root broker: root inside a jail with a uid range of its own, starting root's processes.

It runs as uid 0 of the jail's user namespace with a limited capability set (see
``bwrap.ROOT_CAPABILITIES``; none of them reaches outside that namespace, and the jail's seccomp
filter applies to it and all it starts). It listens on ``bwrap.ROOT_SOCKET`` (a SOCK_SEQPACKET
socket, 0666 in root's /run, so only root replaces it) and starts, for each connection, one
process as root with the caller's stdin, stdout and stderr (passed with SCM_RIGHTS): what
``rootexec`` asks for when ``commands.run(user="root")`` comes. Any process of the sandbox may
ask, as E2B's sandbox user may ``sudo``: root inside is a boundary of nothing but the sandbox.

Messages are JSON, one per packet. The caller sends ``{"argv", "env", "cwd"}`` with its three fds,
then ``{"signal": N}`` to signal the process's group; the broker answers ``{"pid": N}`` or
``{"error": text}``, then ``{"exit": code}`` or ``{"signaled": N}``. A caller that goes away takes
its process's group with it (SIGKILL).

``main([SOCKET, "agent", *ARGV])``, bwrap's command when it starts the agent, also starts the agent
(ARGV) as the sandbox's user with no capability at all, and ends with it. With a forked agent the
fork server forks the broker in when sandboxd first sees a root process asked for
(:func:`become_broker`): an idle sandbox carries none.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import selectors
import signal
import socket
import sys
import termios

from . import capabilities

TYPE_CHECKING = False  # typing itself is not imported: the broker stays resident in every jail
if TYPE_CHECKING:
    from typing import Any, NoReturn

SANDBOX_UID = 1000
# bwrap.ROOT_CAPABILITIES by number, for the fork server: CHOWN DAC_OVERRIDE FOWNER FSETID KILL
# SETGID SETUID SETPCAP NET_BIND_SERVICE SYS_CHROOT AUDIT_WRITE SETFCAP
CAPABILITIES = (0, 1, 3, 4, 5, 6, 7, 8, 10, 18, 29, 31)
_PR_SET_DUMPABLE = 4
_MAX_MESSAGE = 1 << 20
_ROOT_ENV = {"HOME": "/root", "USER": "root", "LOGNAME": "root"}


def drop_to_user() -> None:
    """Become the sandbox's user with no capability, as bwrap makes the agent of other jails:
    bounding set emptied, no groups, uid/gid 1000, effective/permitted/inheritable cleared."""
    libc = ctypes.CDLL(None, use_errno=True)
    capabilities.limit_bounding_set()
    os.setgroups([])
    os.setresgid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)
    os.setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)  # clears permitted, effective and ambient
    capabilities.set_capabilities()  # and the inheritable set
    libc.prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)  # the agent reads its own /proc files


def _start_agent(argv: list[str]) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            drop_to_user()
            os.execv(argv[0], argv)
        except BaseException as exc:  # never run anything as root by mistake: exit
            os.write(2, f"e2bq root broker: cannot start the agent: {exc}\n".encode())
        os._exit(127)
    return pid


def _start_root(request: dict[str, Any], fds: list[int]) -> int:
    """Fork and exec the process a caller asked for, as root with the broker's capabilities."""
    argv = [str(arg) for arg in request["argv"]]
    env = {str(k): str(v) for k, v in dict(request.get("env") or {}).items()}
    env = {**env, **_ROOT_ENV}
    cwd = str(request.get("cwd") or "/root")
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            for signum in (signal.SIGPIPE, signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, signal.SIG_DFL)
            signal.set_wakeup_fd(-1)
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
            for fd in fds:  # received without close-on-exec
                if fd > 2:
                    os.close(fd)
            if os.isatty(0):  # a PTY's command (its stand-in left it free): its controlling terminal
                with contextlib.suppress(OSError):
                    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            os.umask(0o022)
            os.chdir(cwd)
            os.execvpe(argv[0], argv, env)
        except BaseException as exc:
            os.write(2, f"{argv[0]}: {exc}\n".encode())
        os._exit(127)
    return pid


class Broker:
    """The broker's loop: one connection per root process."""

    def __init__(self, path: str) -> None:
        with contextlib.suppress(ProcessLookupError, FileNotFoundError, PermissionError):
            os.unlink(path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(path)
        os.chmod(path, 0o666)
        self.listener.listen(64)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.wakeup_r, wakeup_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wakeup_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wakeup fd is written
        self.selector.register(self.wakeup_r, selectors.EVENT_READ, "children")
        self.by_pid: dict[int, socket.socket] = {}
        self.by_conn: dict[socket.socket, int] = {}
        self.agent: int | None = None

    def run(self, hold: bool) -> NoReturn:
        if hold:
            self.selector.register(0, selectors.EVENT_READ, "lifeline")
        while True:
            for key, _ in self.selector.select():
                if key.data == "accept":
                    with contextlib.suppress(OSError):  # out of fds: the caller sees its connect fail
                        conn, _ = self.listener.accept()
                        self.selector.register(conn, selectors.EVENT_READ, "conn")
                elif key.data == "children":
                    self._reap()
                elif key.data == "lifeline":
                    if not os.read(0, 4096):
                        os._exit(0)
                else:
                    assert isinstance(key.fileobj, socket.socket)
                    self._serve(key.fileobj)

    def _serve(self, conn: socket.socket) -> None:
        try:
            data, fds, _, _ = socket.recv_fds(conn, _MAX_MESSAGE, 3)
        except OSError:
            data, fds = b"", []
        try:
            if not data:
                self._drop(conn)
                return
            message = json.loads(data)
            pid = self.by_conn.get(conn)
            if pid is None and len(fds) == 3:
                self._launch(conn, message, fds)
            elif pid is not None and "signal" in message:
                with contextlib.suppress(ProcessLookupError, FileNotFoundError, PermissionError):
                    os.killpg(pid, int(message["signal"]))
            else:
                _send(conn, {"error": "a request is argv, env, cwd and three fds, then signals"})
                self._drop(conn)
        except (OSError, ValueError, KeyError, TypeError, OverflowError) as exc:  # never the broker's end
            _send(conn, {"error": f"bad request: {exc}"})
            self._drop(conn)
        finally:
            for fd in fds:
                os.close(fd)

    def _launch(self, conn: socket.socket, message: dict[str, Any], fds: list[int]) -> None:
        pid = _start_root(message, fds)
        self.by_pid[pid], self.by_conn[conn] = conn, pid
        _send(conn, {"pid": pid})

    def _drop(self, conn: socket.socket) -> None:
        """The caller went away: its process's group with it."""
        pid = self.by_conn.pop(conn, None)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, FileNotFoundError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        if conn.fileno() != -1:
            self.selector.unregister(conn)
            conn.close()

    def _reap(self) -> None:
        while True:
            with contextlib.suppress(BlockingIOError):
                os.read(self.wakeup_r, 4096)
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.agent:
                os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
            conn = self.by_pid.pop(pid, None)
            if conn is not None:
                code = os.waitstatus_to_exitcode(status)
                _send(conn, {"exit": code} if code >= 0 else {"signaled": -code})
                self.by_conn.pop(conn, None)


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # the caller went away; its connection is dropped when read
        conn.send(json.dumps(message).encode())


def become_broker(path: str) -> NoReturn:
    """The broker forked in by the fork server (already root inside, see ``forkserver.enter``):
    its own session, nothing of the fork server's open (not even its log), serving until the jail
    ends."""
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)
    try:
        Broker(path).run(hold=False)
    finally:
        os._exit(1)


def main(args: list[str]) -> NoReturn:
    path, mode, agent_argv = args[0], args[1], args[2:]
    inherited = [int(fd) for fd in os.listdir("/proc/self/fd") if int(fd) > 2]
    broker = Broker(path)
    if mode == "agent":
        broker.agent = _start_agent(agent_argv)
        # the agent's fds (its sockets, the ready pipe) are its own: the ready pipe must close
        # with the agent, so the broker lets its copies go
        for fd in inherited:
            with contextlib.suppress(OSError):
                if os.get_inheritable(fd):  # not the listing's own, closed already
                    os.close(fd)
    elif mode != "hold":
        sys.exit(f"e2bq root broker: unknown mode {mode!r}")
    broker.run(hold=mode == "hold")
