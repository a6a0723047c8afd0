"""A cgroup per sandbox: memory, process count and CPU share (and the freezer that pauses it), on v1 or v2.

sandboxd (as root) makes ``e2bq-<pid>/<sandbox>`` under each controller's root and starts the jail
inside it, so every process of the sandbox — and anything they fork — is counted and capped there.
An out-of-memory kill then picks a process of that sandbox, never sandboxd or the host.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from .freezer import Freezer
from .limits import Limits

log = logging.getLogger("e2bq.sandboxd")
ROOT = Path("/sys/fs/cgroup")
_V1_CONTROLLERS = ("memory", "pids", "cpu")
# Optional on v1, joined where the host has them: the freezer (without it sandboxes cannot be
# paused with their memory, but still run) and cpuacct (a sandbox's CPU time, jail/usage.py).
_V1_FREEZER = "freezer"
_V1_ACCOUNTING = "cpuacct"


def _v1_controllers() -> tuple[str, ...]:
    optional = tuple(ctrl for ctrl in (_V1_ACCOUNTING, _V1_FREEZER) if (ROOT / ctrl).is_dir())
    return (*_V1_CONTROLLERS, *optional)


def _write(path: Path, value: str) -> None:
    path.write_text(value)


class Cgroups:
    """The cgroups of one sandboxd. ``available`` is False where they cannot be used (not root)."""

    def __init__(self, name: str) -> None:
        self.v2 = (ROOT / "cgroup.controllers").exists()
        self.name = name
        self.v1_controllers = _v1_controllers()
        self.available = os.geteuid() == 0 and self._prepare()

    def _bases(self) -> list[Path]:
        if self.v2:
            return [ROOT / self.name]
        return [ROOT / ctrl / self.name for ctrl in self.v1_controllers]

    def _prepare(self) -> bool:
        try:
            if self.v2:
                wanted = {"memory", "pids", "cpu"}
                present = set((ROOT / "cgroup.controllers").read_text().split())
                if not wanted <= present:
                    raise OSError(f"cgroup v2 lacks controllers {sorted(wanted - present)}")
                _write(ROOT / "cgroup.subtree_control", "+memory +pids +cpu")
            if not self.v2 and _V1_FREEZER in self.v1_controllers:
                try:
                    (ROOT / _V1_FREEZER / self.name).mkdir(exist_ok=True)
                except OSError as exc:  # e.g. mounted read-only: sandboxes run, but cannot pause
                    log.warning("cgroup v1 freezer unavailable, sandboxes cannot be paused: %s", exc)
                    self.v1_controllers = tuple(c for c in self.v1_controllers if c != _V1_FREEZER)
            for base in self._bases():
                base.mkdir(exist_ok=True)
            if self.v2:
                _write(ROOT / self.name / "cgroup.subtree_control", "+memory +pids +cpu")
            return True
        except OSError as exc:
            log.warning("cgroups unavailable, sandboxes run without memory/pids/cpu limits: %s", exc)
            return False

    def paths(self, sandbox_id: str) -> list[Path]:
        return [base / sandbox_id for base in self._bases()]

    def create(self, sandbox_id: str, limits: Limits) -> list[Path]:
        """Make the sandbox's cgroups with ``limits``; return the folders whose procs to join."""
        if not self.available:
            return []
        memory = limits.memory_mb * 1024 * 1024
        for path in self.paths(sandbox_id):
            path.mkdir(exist_ok=True)
        if self.v2:
            group = self.paths(sandbox_id)[0]
            _write(group / "memory.max", str(memory))
            with contextlib.suppress(OSError):
                _write(group / "memory.swap.max", "0")
            _write(group / "pids.max", str(limits.pids))
            _write(group / "cpu.weight", str(max(1, min(10_000, round(100 * limits.cpu)))))
        else:
            mem, pids, cpu = self.paths(sandbox_id)[:3]
            _write(mem / "memory.limit_in_bytes", str(memory))
            with contextlib.suppress(OSError):  # present only when swap accounting is on
                _write(mem / "memory.memsw.limit_in_bytes", str(memory))
            _write(pids / "pids.max", str(limits.pids))
            _write(cpu / "cpu.shares", str(max(2, round(1024 * limits.cpu))))
        return self.paths(sandbox_id)

    def oom_kills(self, sandbox_id: str) -> int:
        """How many processes of the sandbox the kernel killed for memory."""
        if not self.available:
            return 0
        group = self.paths(sandbox_id)[0]
        name = "memory.events" if self.v2 else "memory.oom_control"
        with contextlib.suppress(OSError):
            for line in (group / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        return 0

    def freezer(self, sandbox_id: str) -> Freezer | None:
        """The freezer of the sandbox's cgroup; None where sandboxes cannot be frozen."""
        if not self.available:
            return None
        if self.v2:
            return Freezer(self.paths(sandbox_id)[0], v2=True)
        if _V1_FREEZER not in self.v1_controllers:
            return None
        return Freezer(ROOT / _V1_FREEZER / self.name / sandbox_id, v2=False)

    def remove(self, sandbox_id: str) -> None:
        for path in self.paths(sandbox_id):
            with contextlib.suppress(OSError):
                path.rmdir()

    def sweep(self) -> None:
        """Remove what sandboxd processes that died left behind (their sandboxes ended with them)."""
        sweep_dead()

    def close(self) -> None:
        for base in self._bases():
            with contextlib.suppress(OSError):
                base.rmdir()


def sweep_dead() -> list[str]:
    """Remove the cgroups ``e2bq-<pid>`` (and their sandboxes' groups) whose pid no process has;
    the folders removed. A group that still holds a process stays (rmdir refuses it)."""
    v2 = (ROOT / "cgroup.controllers").exists()
    removed = []
    for root in [ROOT] if v2 else [ROOT / ctrl for ctrl in _v1_controllers()]:
        for base in root.glob("e2bq-*"):
            owner = base.name.removeprefix("e2bq-")
            if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                for group in [*(path for path in base.iterdir() if path.is_dir()), base]:
                    with contextlib.suppress(OSError):
                        group.rmdir()
                        removed.append(str(group))
    return removed
