"""Become, in a forked child of the fork server, what bwrap makes of a process it starts in a jail.

The steps follow ``nsenter`` and then bwrap: as host root, join the sandbox's cgroups and copy the
jail's rlimits and umask; enter its namespaces and chroot into its root, the user namespace last;
become uid/gid 1000 with no groups; drop every capability including
the bounding set; set no_new_privs and load the jail's seccomp filter. The caller forks once more
afterwards so that its child is inside the jail's PID namespace.

Python 3.11 has no ``os.setns``: libc's ``setns``, ``capset`` and ``prctl`` are called with ctypes.
"""

from __future__ import annotations

import ctypes
import os
import resource
import select
import signal
from dataclasses import dataclass
from pathlib import Path

from .. import capabilities

SANDBOX_UID = 1000
RANGE_SIZE = 65536  # ids a jail on a template maps (jail.idmap.RANGE_SIZE)
# nsenter's order, with the user namespace last as nsenter does when it drops privileges: bwrap
# nests the jail's user namespace in the one that owns the others, so from inside it they are
# out of reach; host root enters them first.
NAMESPACES = ("cgroup", "ipc", "uts", "net", "pid", "mnt", "user")

_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_PR_SET_DUMPABLE = 4
_PR_SET_PDEATHSIG = 1
_SECCOMP_MODE_FILTER = 2
# The rows of /proc/<pid>/limits (prlimit on another process needs CAP_SYS_RESOURCE, which a
# container's root may lack; reading the file needs nothing).
_RLIMITS = {  # Linux numbers them in this order (RLIMIT_CPU is 0); Python lacks RLIMIT_LOCKS
    "Max cpu time": 0,
    "Max file size": 1,
    "Max data size": 2,
    "Max stack size": 3,
    "Max core file size": 4,
    "Max resident set": 5,
    "Max processes": 6,
    "Max open files": 7,
    "Max locked memory": 8,
    "Max address space": 9,
    "Max file locks": 10,
    "Max pending signals": 11,
    "Max msgqueue size": 12,
    "Max nice priority": 13,
    "Max realtime priority": 14,
    "Max realtime timeout": 15,
}


class EnterError(Exception):
    """The child could not become a jailed process; it must exit, never run anything."""


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise EnterError(f"{what}: {os.strerror(errno)}")


@dataclass
class JailHandle:
    """What the child holds of the target jail before entering it (all opened as host root)."""

    pidfd: int
    namespaces: dict[str, int]
    root: int
    rlimits: dict[int, tuple[int, int]]
    umask: int


def die_with_parent() -> None:
    """SIGKILL when sandboxd ends, even killed: a fork server must not outlive its host."""
    parent = os.getppid()
    _check(_libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0), "PR_SET_PDEATHSIG")
    if os.getppid() != parent:  # it ended before the signal was armed
        os._exit(1)


def open_jail(pid: int, host_uid: int | None, range_base: int | None = None) -> JailHandle:
    """Open the namespaces and root of ``pid`` (a process of the jail, as the host sees it).

    The pidfd taken first and checked last proves that every namespace opened belongs to that
    process and not to one that took its pid; the uid map proves the process is the jail's: one
    uid (1000 → ``host_uid``), or with ``range_base`` the range of a jail on a template
    (0..65535 → ``range_base``.., see ``jail.idmap``).
    """
    pidfd = os.pidfd_open(pid)
    expected = f"{SANDBOX_UID} {host_uid if host_uid is not None else os.getuid()} 1"
    if range_base is not None:
        expected = f"0 {range_base} {RANGE_SIZE}"
    uid_map = " ".join(Path(f"/proc/{pid}/uid_map").read_text().split())
    if uid_map != expected:
        raise EnterError(f"process {pid} is not a sandbox's (uid map {uid_map!r})")
    namespaces = {name: os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC) for name in NAMESPACES}
    root = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    rlimits = _read_limits(pid)
    umask = int(_status_field(pid, "Umask"), 8)
    if select.select([pidfd], [], [], 0)[0]:  # a pidfd turns readable when its process exits
        raise EnterError(f"process {pid} ended")
    return JailHandle(pidfd, namespaces, root, rlimits, umask)


def _read_limits(pid: int) -> dict[int, tuple[int, int]]:
    limits: dict[int, tuple[int, int]] = {}
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]:
        name, values = line[:26].strip(), line[26:].split()
        if name in _RLIMITS:
            soft, hard = (resource.RLIM_INFINITY if v == "unlimited" else int(v) for v in values[:2])
            limits[_RLIMITS[name]] = (soft, hard)
    if len(limits) != len(_RLIMITS):
        raise EnterError(f"cannot read the limits of process {pid}")
    return limits


def _status_field(pid: int, name: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return value.strip()
    raise EnterError(f"no {name} in /proc/{pid}/status")


def enter(
    jail: JailHandle, cgroup_procs: list[str], seccomp_filter: bytes, root_capabilities: tuple[int, ...] = ()
) -> None:
    """Turn the calling (single-threaded, host-root) process into a jailed one. Raises EnterError.

    With ``root_capabilities`` (a jail with a uid range of its own: its root broker) it becomes
    root inside, holding those capabilities alone, all of them of the jail's user namespace.
    The PID namespace applies to the caller's children only: fork after this returns.
    """
    for procs in cgroup_procs:  # as host root, before the cgroup namespace hides the paths
        Path(procs).write_text(str(os.getpid()))
    for limit, value in jail.rlimits.items():
        resource.setrlimit(limit, value)
    os.umask(jail.umask)
    Path("/proc/self/oom_score_adj").write_text("1000")  # as the agent marks its kernels
    os.setgroups([])  # a user namespace of bwrap's denies setgroups: clear them while we can
    for name in NAMESPACES:
        if name == "user":  # once in it, nothing of the host is reachable: chroot before
            os.fchdir(jail.root)
            os.chroot(".")
            os.close(jail.root)
            os.chdir("/")
        _check(_libc.setns(jail.namespaces[name], 0), f"setns {name}")
        os.close(jail.namespaces[name])
    if root_capabilities:
        _become_root(root_capabilities)
    else:
        os.setresgid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)
        os.setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)
        _drop_capabilities()
    # A fresh exec as uid 1000 would be dumpable: so the agent can read its /proc files
    _check(_libc.prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0), "PR_SET_DUMPABLE")
    _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
    _load_seccomp(seccomp_filter)
    os.close(jail.pidfd)


def _drop_capabilities() -> None:
    """No capability left: bounding set, ambient, then effective/permitted/inheritable."""
    _keep_capabilities(())


def _become_root(keep: tuple[int, ...]) -> None:
    """Uid and gid 0 of the jail's namespace (the range's first host id), then only ``keep`` of the
    full set setns gave there: bounding set, then effective/permitted/inheritable; no ambient."""
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)  # from host root to the namespace's root: no capability is cleared
    _keep_capabilities(keep)


def _keep_capabilities(keep: tuple[int, ...]) -> None:
    try:
        capabilities.limit_bounding_set(keep)
        _check(_libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient capabilities")
        capabilities.set_capabilities(keep)
    except OSError as exc:
        raise EnterError(str(exc)) from exc


def _load_seccomp(program: bytes) -> None:
    """Install a raw BPF program (what bwrap's --seccomp reads) as a seccomp filter."""
    if not program or len(program) % 8:
        raise EnterError("the seccomp filter is not a BPF program")
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    _check(_libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0), "seccomp")
