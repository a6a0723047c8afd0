"""Who the kernel's out-of-memory killer picks inside a sandbox: user code, not the agent."""

from __future__ import annotations

import contextlib
from pathlib import Path


def prefer_for_oom(pid: int) -> None:
    """Mark a process (and what it forks later) as the first to kill when the sandbox is out of memory.

    Raising a score needs no privilege, so the agent keeps its own at 0 and the sandbox's
    memory limit is met by killing a command or a kernel, never the agent that serves the sandbox.
    """
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/oom_score_adj").write_text("1000")
