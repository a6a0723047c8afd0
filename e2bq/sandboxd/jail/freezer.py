"""Freezing a sandbox's cgroup: every process of it stopped at once, its memory kept.

A frozen task is parked by the kernel outside the scheduler: it uses no CPU, its memory, open
files and sockets stay as they were, and it cannot tell (clocks aside) that it was stopped. This
is how a sandbox is paused with its memory: the whole process tree — agent, kernels, the user's
processes and whatever they forked — goes in one write, so none can run on while another stops.

cgroup v1 has the ``freezer`` controller (``freezer.state``: THAWED / FREEZING / FROZEN); cgroup
v2 has ``cgroup.freeze`` in every group, with ``frozen 0|1`` in ``cgroup.events``. Freezing is
asynchronous on both: the write asks, and the group reports frozen once every task has stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

_POLL = 0.001  # seconds between looks at a group that is still freezing
FREEZE_TIMEOUT = 5.0  # seconds a group may take to stop all its tasks


class FreezeError(OSError):
    """The group did not freeze in time (a task stuck in the kernel), or cannot be frozen."""


@dataclass(frozen=True)
class Freezer:
    """The freezer of one cgroup (the folder that holds ``freezer.state`` or ``cgroup.freeze``)."""

    group: Path
    v2: bool

    def frozen(self) -> bool:
        try:
            if self.v2:
                return "frozen 1" in (self.group / "cgroup.events").read_text().splitlines()
            return (self.group / "freezer.state").read_text().strip() == "FROZEN"
        except OSError:
            return False

    def freeze(self, timeout: float = FREEZE_TIMEOUT) -> None:
        """Stop every task of the group; return once all are stopped. Blocks: call from a thread.

        Raises FreezeError if they are not all stopped within ``timeout`` seconds (the group is
        thawed again then, so that a failed pause leaves the sandbox running as it was).
        """
        deadline = time.monotonic() + timeout
        while True:
            # v1 asks again on every write: a task forked while the group was freezing is caught
            self._write("1" if self.v2 else "FROZEN")
            if self.frozen():
                return
            if time.monotonic() > deadline:
                self.thaw()
                raise FreezeError(f"the cgroup {self.group} did not freeze within {timeout}s")
            time.sleep(_POLL)

    def thaw(self) -> None:
        """Let every task of the group run again (at once on both versions)."""
        self._write("0" if self.v2 else "THAWED")

    def _write(self, value: str) -> None:
        name = "cgroup.freeze" if self.v2 else "freezer.state"
        try:
            (self.group / name).write_text(value)
        except OSError as exc:
            raise FreezeError(f"cannot write {value} to {self.group / name}: {exc}") from exc
