"""A sandbox on a template gets a range of host uids of its own, so that root inside is nobody outside.

The jail's user namespace maps inside ids 0..65535 (uid and gid) onto host ids B..B+65535, a range
no other sandbox and no host account uses (``B = first + slot * RANGE_SIZE``, where ``first`` is
``E2BQ_SANDBOX_UID_RANGE_BASE``, ``RANGE_BASE`` by default). Root inside is
then host uid B, the sandbox's user (1000) is B+1000: every id a process inside can take is one of
the sandbox's own, and every file it writes on its disk belongs to one of them.

bwrap writes a single-line map only, so sandboxd (root) makes the namespace first: a holder started
as uid B unshares a user namespace, sandboxd writes the range into its maps, keeps a descriptor of
it and lets the holder go; bwrap, started as uid B (the namespace's owner), joins it with
``--userns``. The template's tree, owned by host root, is shown to the overlay through an
idmapped mount with the same map (on-disk uid u appears as B+u): inside, the template's files
belong to root and its users, and root inside changes them by copy-up into its own layer. The
idmapped mount is read-only: nothing through it reaches the shared tree.

Python 3.11 has no binding for ``open_tree``, ``mount_setattr`` or ``move_mount``: ctypes calls them
by number (x86-64 and arm64 share these numbers).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
import time
from pathlib import Path

RANGE_BASE = 1 << 24  # above the subordinate ids useradd hands out (100000 + 65536 per account)
RANGE_SIZE = 65536
INSIDE_USER = 1000  # the sandbox's user inside (bwrap.SANDBOX_UID)

_SYS_OPEN_TREE, _SYS_MOVE_MOUNT, _SYS_MOUNT_SETATTR = 428, 429, 442
_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000
_OPEN_TREE_CLONE = 1
_OPEN_TREE_CLOEXEC = 0o2000000
_MOUNT_ATTR_RDONLY, _MOUNT_ATTR_NOSUID, _MOUNT_ATTR_NODEV, _MOUNT_ATTR_IDMAP = 0x1, 0x2, 0x4, 0x100000
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_UNSHARE_WAIT = 5.0  # seconds for the holder to unshare its user namespace

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class IdmapError(OSError):
    """The sandbox's user namespace or its idmapped mount could not be made."""


class _MountAttr(ctypes.Structure):
    _fields_ = (
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    )


def base_of(slot: int, first: int = RANGE_BASE) -> int:
    """The first host id of the range of ``slot``, ranges starting at ``first``."""
    return first + slot * RANGE_SIZE


def uid_map(base: int) -> str:
    """The jail's uid_map (and gid_map) as /proc shows it, whitespace collapsed."""
    return f"0 {base} {RANGE_SIZE}"


def make_userns(base: int) -> int:
    """A user namespace owned by host uid ``base`` mapping 0..65535 onto ``base``.. (uid and gid);
    returns a descriptor of it (close-on-exec). Blocks. Raises IdmapError."""
    holder = subprocess.Popen(  # uid, gid and groups set by the child itself: no setpriv to exec
        ["unshare", "--user", "--", "cat"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        user=base,
        group=base,
        extra_groups=[],
    )
    try:
        own = os.readlink("/proc/self/ns/user")
        deadline = time.monotonic() + _UNSHARE_WAIT
        while _userns_of(holder.pid) in (own, None):
            if holder.poll() is not None or time.monotonic() > deadline:
                detail = holder.stderr.read().decode(errors="replace") if holder.stderr else ""
                raise IdmapError(f"cannot make the sandbox's user namespace: {detail[-300:]}")
            time.sleep(0.0005)
        # gid_map before anything drops setgroups: root inside may set its groups (apt does)
        for name in ("uid_map", "gid_map"):
            Path(f"/proc/{holder.pid}/{name}").write_text(f"0 {base} {RANGE_SIZE}\n")
        return os.open(f"/proc/{holder.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise IdmapError(f"cannot make the sandbox's user namespace: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            if holder.stdin is not None:
                holder.stdin.close()
        holder.kill()
        holder.wait()
        if holder.stderr is not None:
            holder.stderr.close()


def _userns_of(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/user")
    except OSError:
        return None


def mount_idmapped(source: Path, target: Path, userns_fd: int) -> None:
    """Show ``source`` at ``target`` read-only, nosuid, nodev, its owners shifted by the map of
    ``userns_fd`` (an on-disk uid u appears as the host uid u maps to). Raises IdmapError."""
    tree = _libc.syscall(
        _SYS_OPEN_TREE, _AT_FDCWD, os.fsencode(source), _OPEN_TREE_CLONE | _OPEN_TREE_CLOEXEC
    )
    if tree < 0:
        raise IdmapError(f"open_tree {source}: {os.strerror(ctypes.get_errno())}")
    try:
        flags = _MOUNT_ATTR_IDMAP | _MOUNT_ATTR_RDONLY | _MOUNT_ATTR_NOSUID | _MOUNT_ATTR_NODEV
        attr = _MountAttr(flags, 0, 0, userns_fd)
        if _libc.syscall(
            _SYS_MOUNT_SETATTR, tree, b"", _AT_EMPTY_PATH, ctypes.byref(attr), ctypes.sizeof(attr)
        ):
            raise IdmapError(f"idmapping {source}: {os.strerror(ctypes.get_errno())}")
        if _libc.syscall(
            _SYS_MOVE_MOUNT, tree, b"", _AT_FDCWD, os.fsencode(target), _MOVE_MOUNT_F_EMPTY_PATH
        ):
            raise IdmapError(f"mounting {source} at {target}: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(tree)
