"""A stack of its own for every fault test: Redis, sandboxd and workers that the test may break.

Each test gets a private Redis and a private sandboxd (both start in about a second), its own queue
and namespace, and workers it starts through ``stack.worker(...)``; every process it started is
stopped in the finalizer, by PID.
"""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest

from e2bq import E2BToolkit, SandboxManager, Settings
from tests.procs import (
    SandboxHostProcess,
    WorkerProcess,
    redis_server,
    sandbox_host,
    start_worker,
    wait_for,
)

T = TypeVar("T")


class Restartable(Generic[T]):
    """A process started by a context manager (``redis_server``, ``sandbox_host``), stopped and
    started again by the test; ``start`` must bring it back at the same address."""

    def __init__(self, start: Callable[[], AbstractContextManager[T]]) -> None:
        self._start = start
        self._running = contextlib.ExitStack()

    def start(self) -> T:
        self.current = self._running.enter_context(self._start())
        return self.current

    def stop(self) -> None:
        self._running.close()

    def restart(self) -> T:
        self.stop()
        return self.start()

    @contextlib.contextmanager
    def running(self) -> Iterator[Restartable[T]]:
        """Started for the ``with`` block, stopped at its end (whatever restarts happened)."""
        try:
            self.start()
            yield self
        finally:
            self.stop()


@dataclass
class Stack:
    """The environment of a test's clients and workers, and the workers it started."""

    tmp: Path
    env: dict[str, str]
    host: SandboxHostProcess
    cleanup: contextlib.ExitStack
    workers: list[WorkerProcess] = field(default_factory=list)

    def worker(self, *args: str, env: dict[str, str] | None = None, name: str | None = None) -> WorkerProcess:
        """Start an ``e2bq worker`` on the stack's queue; stopped (or found dead) at the end of the test."""
        running = start_worker(self.tmp, {**self.env, **(env or {})}, *args, name=name)
        self.cleanup.enter_context(running)
        self.workers.append(running)
        return running

    def settings(self, **overrides: Any) -> Settings:
        return Settings.from_env(self.env, **overrides)

    def toolkit(
        self, *, default_timeout: int = 300, auto_create_default: bool = True, **overrides: Any
    ) -> E2BToolkit:
        """A client of the stack (``overrides``: Settings fields, e.g. ``queue=``)."""
        manager = SandboxManager(default_timeout=default_timeout, settings=self.settings(**overrides))
        return E2BToolkit(manager, auto_create_default=auto_create_default)


def job_ended(toolkit: E2BToolkit, job_id: str, timeout: float = 60, what: str = "") -> Any:
    """The job's record, once it is no longer ``running`` (waiting ``timeout`` seconds at most)."""
    return wait_for(
        lambda: (s := toolkit.get_job_status(job_id))["status"] != "running" and s,
        timeout,
        what or f"job {job_id} to end",
    )


def kill_worker(running: WorkerProcess) -> None:
    """SIGKILL a worker and every process it forked, as the OOM killer or a lost host would."""
    family = [running.proc.pid, *descendants(running.proc.pid)]
    for pid in family:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    running.proc.wait()


def descendants(pid: int) -> list[int]:
    """The processes below ``pid``, read from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


@contextlib.contextmanager
def build_stack(tmp: Path, redis_url: str, host: SandboxHostProcess) -> Iterator[Stack]:
    suffix = uuid.uuid4().hex[:8]
    env = {
        "E2BQ_REDIS_URL": redis_url,
        "E2BQ_QUEUE": f"faults-{suffix}",
        "E2BQ_NAMESPACE": f"faults-{suffix}",
        **host.env,
    }
    with contextlib.ExitStack() as cleanup:
        yield Stack(tmp, env, host, cleanup)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """Redis, sandboxd and (through ``stack.worker``) workers of this test alone."""
    with (
        redis_server(tmp_path) as url,
        sandbox_host(tmp_path) as host,
        build_stack(tmp_path, url, host) as built,
    ):
        yield built
