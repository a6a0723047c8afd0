"""What a sandbox uses now: CPU time and memory from its cgroup, space on its disk image.

Counters only; turning two readings into a CPU percentage, and keeping a history, is
``sandboxd.usage``'s job. Every read is a few small files under /sys/fs/cgroup and one
``statvfs``: cheap enough to take for every sandbox every few seconds.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from .cgroups import ROOT, Cgroups

_UNLIMITED = 1 << 60  # cgroup v1 says "no limit" with a number near 2**63


@dataclass(frozen=True)
class Reading:
    """One look at a sandbox. Bytes, and CPU nanoseconds since its cgroup was made (None when
    the host keeps no CPU accounting for it)."""

    cpu_ns: int | None
    mem_used: int
    mem_cache: int
    mem_total: int
    disk_used: int
    disk_total: int


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stat_file(path: Path) -> dict[str, int]:
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                values[key] = int(value)
    return values


def cpu_ns(cgroups: Cgroups, sandbox_id: str) -> int | None:
    """CPU time every process of the sandbox used, in ns (v2 ``cpu.stat``, v1 ``cpuacct``)."""
    if not cgroups.available:
        return None
    if cgroups.v2:
        usec = _stat_file(ROOT / cgroups.name / sandbox_id / "cpu.stat").get("usage_usec")
        return None if usec is None else usec * 1000
    return _read_int(ROOT / "cpuacct" / cgroups.name / sandbox_id / "cpuacct.usage")


def memory(cgroups: Cgroups, sandbox_id: str, limit_bytes: int) -> tuple[int, int, int]:
    """(used, cache, total) bytes. Used leaves out inactive page cache, as ``free`` inside a VM
    does and docker's stats do; total is the cgroup's limit (or ``limit_bytes``)."""
    if not cgroups.available:
        return 0, 0, limit_bytes
    if cgroups.v2:
        group = ROOT / cgroups.name / sandbox_id
        current, limit = _read_int(group / "memory.current"), _read_int(group / "memory.max")
        stats = _stat_file(group / "memory.stat")
        inactive, cache = stats.get("inactive_file", 0), stats.get("file", 0)
    else:
        group = ROOT / "memory" / cgroups.name / sandbox_id
        current = _read_int(group / "memory.usage_in_bytes")
        limit = _read_int(group / "memory.limit_in_bytes")
        stats = _stat_file(group / "memory.stat")
        inactive, cache = stats.get("total_inactive_file", 0), stats.get("total_cache", 0)
    total = limit if limit is not None and limit < _UNLIMITED else limit_bytes
    used = max(0, (current or 0) - inactive)
    return used, cache, total


def disk(data: Path, limit_bytes: int) -> tuple[int, int]:
    """(used, total) bytes of the sandbox's writable space: its disk image when it has one, else
    the size of its plain folder against the limit it would have had."""
    if os.path.ismount(data):
        try:
            st = os.statvfs(data)
        except OSError:
            return 0, limit_bytes
        return (st.f_blocks - st.f_bfree) * st.f_frsize, st.f_blocks * st.f_frsize
    return _folder_size(data), limit_bytes


def _folder_size(root: Path, most: int = 100_000) -> int:
    """Bytes allocated under ``root``, looking at ``most`` entries at most (a bound on the cost of
    a sample on a host without disk images; a larger tree is under-counted)."""
    used, seen = 0, 0
    pending = [root]
    while pending and seen < most:
        try:
            with os.scandir(pending.pop()) as items:
                for item in items:
                    seen += 1
                    with contextlib.suppress(OSError):
                        st = item.stat(follow_symlinks=False)
                        used += st.st_blocks * 512
                        if item.is_dir(follow_symlinks=False):
                            pending.append(Path(item.path))
        except OSError:
            continue
    return used


def read(cgroups: Cgroups, sandbox_id: str, *, data: Path, memory_mb: int, disk_mb: int) -> Reading:
    """A sandbox's usage now."""
    mem_used, mem_cache, mem_total = memory(cgroups, sandbox_id, memory_mb * 1024 * 1024)
    disk_used, disk_total = disk(data, disk_mb * 1024 * 1024)
    return Reading(
        cpu_ns=cpu_ns(cgroups, sandbox_id),
        mem_used=mem_used,
        mem_cache=mem_cache,
        mem_total=mem_total,
        disk_used=disk_used,
        disk_total=disk_total,
    )
