"""Taking over a kernel that sandboxd forked into the jail (see ``agent.forkserver``).

The forked kernel writes ``adopt.json`` in the kernels' folder: its pid and connection file, or
the error that stopped it. It is no child of the agent (its parent is the jail's init), so the
agent watches it through a pidfd; it runs as the same uid in the same PID namespace, so signals
to its process group (interrupt, kill) work as for a spawned kernel. Its exit status is not
known to the agent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import TypedDict

log = logging.getLogger(__name__)

ADOPT_FILE = "adopt.json"
WAIT = 30.0  # seconds the agent waits for the forked kernel before starting its own
POLL = 0.01  # seconds between looks for the adoption file
UNKNOWN_EXIT = -255  # the returncode an adopted kernel gets once it has exited


class Adoptable(TypedDict):
    pid: int
    connection_file: str


class AdoptedProcess:
    """A process that is not our child, watched through a pidfd; the shape of asyncio's Process
    that ``Kernel`` uses."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.stderr: asyncio.StreamReader | None = None
        self._fd = os.pidfd_open(pid)
        self._exited = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._fd, self._on_exit)

    def _on_exit(self) -> None:
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._exited.set()

    @property
    def returncode(self) -> int | None:
        return UNKNOWN_EXIT if self._exited.is_set() else None

    async def wait(self) -> int:
        await self._exited.wait()
        return UNKNOWN_EXIT


async def wait_for_kernel(folder: Path, fallback: Path | None) -> Adoptable | None:
    """The forked kernel's pid and connection file once it has written them; None when it will
    not come (an error, sandboxd's ``fallback`` file, or WAIT seconds), so the caller spawns one."""
    path = folder / ADOPT_FILE
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while loop.time() < deadline:
        if path.exists():
            content = json.loads(path.read_text())
            path.unlink(missing_ok=True)
            if "error" in content:
                log.warning("the forked kernel failed: %s", content["error"])
                return None
            return Adoptable(pid=int(content["pid"]), connection_file=str(content["connection_file"]))
        if fallback is not None and fallback.exists():
            return None
        await asyncio.sleep(POLL)
    log.warning("no forked kernel came within %g s", WAIT)
    return None
