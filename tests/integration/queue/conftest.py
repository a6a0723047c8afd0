"""A real stack per test module: Redis, the session's sandboxd, and an `e2bq worker` subprocess.

Each module gets its own queue name and registry namespace, so modules never see each other's
tasks or sandboxes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from e2bq import E2BToolkit, SandboxManager
from tests.procs import SandboxHostProcess, WorkerProcess, queue_env, redis_server, worker


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(Path(tmp_path_factory.mktemp("redis"))) as url:
        yield url


@pytest.fixture(scope="module")
def stack_env(redis_url: str, sandboxd: SandboxHostProcess) -> dict[str, str]:
    """The environment of this module's clients and workers."""
    return queue_env(redis_url, sandboxd, "test")


@pytest.fixture(scope="module")
def queue_worker(
    stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """One threads-pool worker serving this module's queue."""
    with worker(Path(tmp_path_factory.mktemp("worker")), stack_env) as running:
        yield running


@pytest.fixture
def client_env(stack_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in stack_env.items():
        monkeypatch.setenv(name, value)
    return stack_env


@pytest.fixture
def toolkit(client_env: dict[str, str], queue_worker: WorkerProcess) -> Iterator[E2BToolkit]:
    """A toolkit with a default sandbox; every sandbox it made is shut down afterwards."""
    kit = E2BToolkit(SandboxManager(default_timeout=300), auto_create_default=True)
    try:
        yield kit
    finally:
        kit.shutdown_all_sandboxes()


@pytest.fixture
def bare_toolkit(client_env: dict[str, str], queue_worker: WorkerProcess) -> E2BToolkit:
    """A toolkit with no sandbox, for calls that must be refused before they reach one."""
    return E2BToolkit(SandboxManager(default_timeout=300), auto_create_default=False)
