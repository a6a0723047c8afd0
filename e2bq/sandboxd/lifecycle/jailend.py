"""Ending a jail's processes, frozen or not (used by a kill and by a filesystem pause)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from ..jail.freezer import Freezer


def end_processes(proc: subprocess.Popen[bytes] | None, freezer: Freezer | None) -> None:
    """End every process of the jail whose bwrap is ``proc``; return once none runs. Blocks.

    A paused (frozen) jail: the kill waits in its frozen tasks and takes them as they thaw, so
    none of the sandbox's code runs again; its init's exit then lets bwrap exit.
    """
    if proc is not None and freezer is not None and freezer.frozen():
        for pid in children(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            freezer.thaw()
    if proc is not None:
        kill_jail(proc)


def kill_jail(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the jail; return once none of its processes runs any more.

    The signal goes to the jail's init (bwrap's child, pid 1 inside). When the init of a PID
    namespace dies, the kernel kills every other process in it and lets the init's parent reap
    it only once they have all exited; bwrap exits when its child is reaped, so bwrap's exit
    means the jail is empty. Killing bwrap itself returns sooner, while the jail's processes
    may still run and write into the sandbox's folder. Blocks: call it from a worker thread.
    """
    if proc.poll() is not None:
        return
    inits = children(proc.pid)
    for pid in inits:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if inits:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    if proc.poll() is None:  # no init found, or bwrap did not follow it
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (from /proc; empty when the kernel does not list them)."""
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def wait_quietly(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
