"""What the host sees of a sandbox: its processes, their memory, the host's own addresses.

Everything here reads /proc from the host's side (the tests run as root), so it observes a jail
without trusting anything the jail reports about itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def host_pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def host_pids_running(text: str) -> list[int]:
    """Host pids whose command line contains ``text``."""
    return [pid for pid in host_pids() if text in cmdline(pid)]


def children(pid: int) -> list[int]:
    """Processes ``pid`` started, from any of its threads."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    pending = children(pid)
    while pending:
        child = pending.pop()
        found.append(child)
        pending.extend(children(child))
    return found


def _pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def jail_namespaces(sandbox_id: str) -> set[str]:
    """The PID namespace of the sandbox's jail (empty once its bwrap has gone)."""
    outer = [
        pid for pid in host_pids_running(sandbox_id) if Path(cmdline(pid).split(" ")[0]).name == "bwrap"
    ]
    namespaces = {ns for pid in outer for child in children(pid) if (ns := _pid_namespace(child))}
    namespaces.discard(_pid_namespace(os.getpid()))
    return namespaces


def pids_in(namespaces: set[str]) -> list[int]:
    """Host pids of every process in one of the PID ``namespaces``."""
    return [pid for pid in host_pids() if namespaces and _pid_namespace(pid) in namespaces]


def jail_pids(sandbox_id: str) -> list[int]:
    """Host pids of every process inside the sandbox's jail (its PID namespace)."""
    return pids_in(jail_namespaces(sandbox_id))


def jail_processes_running(sandbox_id: str, text: str) -> list[int]:
    return [pid for pid in jail_pids(sandbox_id) if text in cmdline(pid)]


def jail_agent(sandbox_id: str) -> int:
    """Host pid of the sandbox's agent (not bwrap, whose command line names it too)."""
    [agent] = [
        pid
        for pid in jail_processes_running(sandbox_id, "agent.server")
        if Path(cmdline(pid).split(" ")[0]).name != "bwrap"
    ]
    return agent


def real_and_effective_uids(pid: int) -> set[int]:
    """The real and effective uid of ``pid`` (empty if it has ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return set()
    for line in status.splitlines():
        if line.startswith("Uid:"):
            return {int(uid) for uid in line.split()[1:3]}
    return set()


def vm_rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` in KiB (from /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise LookupError(f"no VmRSS for pid {pid}")


def host_addresses() -> list[str]:
    """The host's own non-loopback addresses (``hostname -I``), IPv4 and IPv6."""
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=False).stdout
    return [a for a in out.split() if not a.startswith("127.") and a != "::1"]


def _listening_inodes() -> set[int]:
    """Socket inodes of TCP listeners in the host's network namespace."""
    inodes: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A":  # TCP_LISTEN
                    inodes.add(int(fields[9]))
    return inodes


def socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return inodes


def host_listeners_of(pids: list[int]) -> set[int]:
    """Which of ``pids`` listen for TCP connections on the host's own network."""
    listening = _listening_inodes()
    return {pid for pid in pids if socket_inodes(pid) & listening}


@dataclass
class Listener:
    """A TCP server on the host that answers like Redis and remembers who connected."""

    sock: socket.socket
    accepted: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def serve(self) -> None:
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            self.accepted.append(str(peer))
            with contextlib.suppress(OSError), conn:
                conn.sendall(b"+PONG\r\n")


@contextlib.contextmanager
def host_listener(host: str = "::") -> Iterator[Listener]:
    """A listener on every address of the host (IPv4 and IPv6), or on ``host`` only."""
    if host == "::":
        sock = socket.create_server(("::", 0), family=socket.AF_INET6, dualstack_ipv6=True)
    else:
        sock = socket.create_server((host, 0))
    listener = Listener(sock)
    thread = threading.Thread(target=listener.serve, daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        thread.join(timeout=5)


@dataclass
class UnixListener:
    """A unix socket on the host that answers ``OK`` and records what it was sent."""

    path: Path
    sock: socket.socket
    received: list[bytes] = field(default_factory=list)

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with contextlib.suppress(OSError), conn:
                conn.settimeout(2)
                self.received.append(conn.recv(4096) or b"<connected>")
                conn.sendall(b"OK\nHTTP/1.1 200 OK\r\ncontent-length: 16\r\n\r\nthe host answers")


@contextlib.contextmanager
def host_unix_listener(path: Path) -> Iterator[UnixListener]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    path.chmod(0o777)
    sock.listen(16)
    listener = UnixListener(path, sock)
    thread = threading.Thread(target=listener.serve, daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        thread.join(timeout=5)
        path.unlink(missing_ok=True)
