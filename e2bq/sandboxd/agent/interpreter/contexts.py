"""A code context: one kernel, its working directory, and the lock that serializes its executions."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path
from typing import TypedDict

from ..errors import ContextClosed
from .adoption import Adoptable
from .kernels import Kernel
from .languages import ALIASES
from .languages import LANGUAGES as KERNELS

LANGUAGES = tuple(KERNELS)
CLOSE_GRACE = 2.0  # seconds for running executions to wind down once their kernel is killed


class ContextInfo(TypedDict):
    """A context as ``/contexts`` shows it."""

    id: str
    language: str
    cwd: str


class Context:
    """Executions run one at a time (``lock``); state lives in the kernel between them."""

    def __init__(self, kernel: Kernel, *, language: str, cwd: Path) -> None:
        self.id = str(uuid.uuid4())
        self.kernel = kernel
        self.language = language
        self.cwd = cwd
        self.lock = asyncio.Lock()
        self.closed = False
        self.tasks: set[asyncio.Task[None]] = set()

    def info(self) -> ContextInfo:
        return {"id": self.id, "language": self.language, "cwd": str(self.cwd)}

    def track(self, task: asyncio.Task[None]) -> None:
        """Keep ``task`` (an execution in this context) alive until it is done."""
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def start(self, adopt: Adoptable | None = None) -> None:
        async with self.lock:
            await self.kernel.start(adopt)

    async def ensure_kernel(self) -> None:
        """Start a new kernel if the last one died (call with ``lock`` held)."""
        if self.closed:
            raise ContextClosed(f"context {self.id} was deleted")
        if self.kernel.exited:  # as E2B's Jupyter restarts a kernel that died
            await self.kernel.restart()

    async def restart(self) -> None:
        """Kill the kernel at once (a running execution ends with an error) and start a new one."""
        self.kernel.kill("the context was restarted")
        async with self.lock:
            await self.kernel.restart()

    async def close(self) -> None:
        """Kill the kernel, end this context's executions, and release everything."""
        self.closed = True
        self.kernel.kill("the context was deleted")
        if self.tasks:
            _, pending = await asyncio.wait(set(self.tasks), timeout=CLOSE_GRACE)
            for task in pending:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*pending, return_exceptions=True)
        await self.kernel.stop()


def normalize_language(language: str | None) -> str:
    """The context language a request means: python when none is given."""
    normalized = (language or "python").strip().lower()
    return ALIASES.get(normalized, normalized)
