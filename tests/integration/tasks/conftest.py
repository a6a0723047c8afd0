"""An in-process worker for fast tests of the task layer: pytest-celery's session fixtures
(``celery_session_app`` / ``celery_session_worker``) run e2bq's real worker app in this process,
against a real redis-server and the session's sandboxd, driven through the unmodified e2b SDK.

The real-process suites (queue, faults) start ``e2bq worker`` subprocesses instead: they need
prefork, revoke and crashes. This one needs none of that and starts in a fraction of a second.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from tests.procs import SandboxHostProcess, queue_env, redis_server


@pytest.fixture(scope="session")
def task_env(
    tmp_path_factory: pytest.TempPathFactory, sandboxd: SandboxHostProcess
) -> Iterator[dict[str, str]]:
    """The environment of the in-process worker and of the tests' clients."""
    with redis_server(Path(tmp_path_factory.mktemp("redis-tasks"))) as url:
        yield queue_env(url, sandboxd, "tasks")


@pytest.fixture(scope="session")
def celery_session_app(task_env: dict[str, str]) -> Iterator[Celery]:
    """e2bq's worker app (it reads its settings when imported) instead of the plugin's test app."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in task_env.items():
            patch.setenv(name, value)
        app = importlib.import_module("workers.app").app
        importlib.import_module("workers.tasks")
    yield app


@pytest.fixture(scope="session")
def celery_worker_pool() -> str:
    return "threads"


@pytest.fixture(scope="session")
def celery_worker_parameters() -> dict[str, Any]:
    # The plugin's ping check sends celery.ping through the *current* app; e2bq's app is never made
    # current (no process-global app), and the worker's start already waits until it consumes.
    return {"concurrency": 4, "shutdown_timeout": 30, "perform_ping_check": False}


@pytest.fixture(autouse=True)
def _task_env(task_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The worker reads the provider's settings at its first task; clients read them when made."""
    for name, value in task_env.items():
        monkeypatch.setenv(name, value)
    return task_env
