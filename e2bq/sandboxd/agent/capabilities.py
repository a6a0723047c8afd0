"""A process's Linux capabilities, set through libc (Python 3.11 has no binding for ``capset``).

Shared by the fork server's children (``forkserver.enter``) and the root broker (``rootbroker``),
which both import nothing but the standard library. Errors are OSError with the call's errno.
"""

from __future__ import annotations

import ctypes
import os

_PR_CAPBSET_DROP = 24
_CAPABILITY_VERSION_3 = 0x20080522
_CAP_LAST_CAP = "/proc/sys/kernel/cap_last_cap"

_libc = ctypes.CDLL(None, use_errno=True)


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


def _fail(what: str) -> OSError:
    errno = ctypes.get_errno()
    return OSError(errno, f"{what}: {os.strerror(errno)}")


def limit_bounding_set(keep: tuple[int, ...] = ()) -> None:
    """Drop every capability but ``keep`` from the bounding set, for good."""
    with open(_CAP_LAST_CAP) as file:
        last = int(file.read())
    for cap in range(last + 1):
        if cap not in keep and _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise _fail(f"drop capability {cap}")


def set_capabilities(keep: tuple[int, ...] = ()) -> None:
    """Make ``keep`` the effective, permitted and inheritable sets (none by default)."""
    mask = sum(1 << cap for cap in keep)
    data = (_CapData * 2)()
    data[0].effective = data[0].permitted = data[0].inheritable = mask & 0xFFFFFFFF
    data[1].effective = data[1].permitted = data[1].inheritable = mask >> 32
    if _libc.capset(ctypes.byref(_CapHeader(_CAPABILITY_VERSION_3, 0)), data) != 0:
        raise _fail("capset")
