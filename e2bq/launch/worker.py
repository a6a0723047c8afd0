"""An ``e2bq worker``: a Celery worker process serving e2bq's tasks."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .process import Process, spawn

WORKER_GRACE = 20.0  # seconds a stopping worker has to finish or hand back its tasks


@dataclass(frozen=True, kw_only=True)
class WorkerProcess(Process):
    """A running ``e2bq worker`` started by :func:`start_worker`; its Celery node is ``<name>@<host>``."""


def start_worker(
    folder: Path,
    *args: str,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    grace: float = WORKER_GRACE,
) -> WorkerProcess:
    """Start ``e2bq worker`` and return once Celery reports it ready to take tasks.

    The worker takes its settings from its environment: this process's plus ``env``, which should
    name at least ``E2BQ_REDIS_URL`` and the provider (e.g. a :class:`SandboxHostProcess`'s ``env``).
    Its Celery node is ``<name>@<hostname>`` (``name`` defaults to ``worker-<random hex>``) and it
    logs to ``folder/<name>.log`` at level INFO: its "ready." line is how readiness is seen, so do
    not lower the level in ``args``. ``args`` are Celery worker options (e.g. ``"--pool",
    "prefork"``); without them it runs e2bq's default pool of 20 threads on its node's queues and
    the shared ones. Stopping it gives it ``grace`` seconds to end its tasks before SIGKILL.

    Raises ConfigurationError when the worker exits while starting or is not ready within
    ``timeout`` seconds (it is stopped first). Use the result as a context manager, or call its
    ``stop()``.
    """
    name = name or f"worker-{secrets.token_hex(4)}"
    log = folder / f"{name}.log"
    start = _size_of(log)  # the log may hold an earlier worker's "ready." under the same name
    cmd = [sys.executable, "-m", "e2bq.cli", "worker", "--loglevel", "info", "-n", f"{name}@%h", *args]
    proc = spawn(
        cmd,
        log=log,
        env=env,
        ready=lambda: " ready." in _read_from(log, start),
        timeout=timeout,
        what=f"worker {name}",
    )
    return WorkerProcess(name=name, proc=proc, log=log, grace=grace)


def _size_of(log: Path) -> int:
    try:
        return log.stat().st_size
    except FileNotFoundError:
        return 0


def _read_from(log: Path, offset: int) -> str:
    with log.open("rb") as file:
        file.seek(offset)
        return file.read().decode(errors="replace")
