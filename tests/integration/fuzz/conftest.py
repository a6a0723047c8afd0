"""The real stack for the fuzz suite (Redis, the session's sandboxd, one worker) and the checks
every fuzzed call must pass.

The toolkit is made once per module: Hypothesis runs many examples per test, and function-scoped
fixtures are not reset between them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2bq import TERMINAL_STATES, E2BToolkit, SandboxManager, Settings
from tests.procs import SandboxHostProcess, WorkerProcess, queue_env, redis_server, worker

JOB_END_DEADLINE = 60.0  # seconds a killed job has to read as ended
STATUSES = {"success", "error", "accepted", "running", "done", "cancelled", "not_cancelled", "not_found"}
INTERNAL = "internal error in e2bq"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(Path(tmp_path_factory.mktemp("redis"))) as url:
        yield url


@pytest.fixture(scope="module")
def stack_env(redis_url: str, sandboxd: SandboxHostProcess) -> dict[str, str]:
    return queue_env(redis_url, sandboxd, "fuzz")


@pytest.fixture(scope="module")
def queue_worker(
    stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    with worker(Path(tmp_path_factory.mktemp("worker")), stack_env) as running:
        yield running


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The current folder while the module runs: where calls write files they are given no path for."""
    folder = Path(tmp_path_factory.mktemp("cwd"))
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield folder
    finally:
        os.chdir(before)


@pytest.fixture(scope="module")
def settings(stack_env: dict[str, str]) -> Settings:
    return Settings.from_env(stack_env)


@pytest.fixture(scope="module")
def toolkit(settings: Settings, queue_worker: WorkerProcess, workdir: Path) -> Iterator[E2BToolkit]:
    kit = E2BToolkit(SandboxManager(default_timeout=600, settings=settings), auto_create_default=True)
    try:
        yield kit
    finally:
        kit.shutdown_all_sandboxes()


@pytest.fixture(scope="module")
def sandbox_id(toolkit: E2BToolkit) -> str:
    """A second sandbox of the toolkit's, named by id in calls."""
    made = toolkit.create_sandbox(timeout=600)
    assert made["status"] == "success", made
    return str(made["sandbox_id"])


def check(result: Any) -> dict[str, Any]:
    """The contract of every public method's result: a JSON-safe dict with a known ``status``; an
    error carries a non-empty message and is never e2bq's own bug."""
    shown = repr(result)[:500]  # results may echo very long inputs
    assert isinstance(result, dict), shown
    assert result.get("status") in STATUSES, shown
    json.dumps(result, allow_nan=False)
    if result["status"] == "error":
        message = result.get("message")
        assert isinstance(message, str) and message.strip(), shown
        assert not message.startswith(INTERNAL), shown
    return result


def finite(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


class Jobs:
    """Background jobs a test made: each is killed (if still running) and must then read as ended."""

    def __init__(self, toolkit: E2BToolkit) -> None:
        self.toolkit = toolkit
        self.ids: list[str] = []

    def track(self, result: dict[str, Any]) -> None:
        """Note the job a submitting call made (its result names it; a lookup's result may name an
        id that was never a job)."""
        job_id = result.get("job_id")
        if result["status"] != "not_found" and isinstance(job_id, str) and job_id not in self.ids:
            self.ids.append(job_id)

    def end_all(self) -> None:
        for job_id in self.ids:
            check(self.toolkit.kill_job(job_id))  # an error when it has ended already
        deadline = time.monotonic() + JOB_END_DEADLINE
        for job_id in self.ids:
            while True:
                status = check(self.toolkit.get_job_status(job_id))
                if status["status"] in TERMINAL_STATES:
                    break
                assert time.monotonic() < deadline, f"job {job_id} still {status} after kill_job"
                time.sleep(0.05)
        self.ids.clear()

    @contextlib.contextmanager
    def ending(self) -> Iterator[Jobs]:
        """Track jobs for one example and end them all when it is over."""
        try:
            yield self
        finally:
            self.end_all()


@pytest.fixture(scope="module")
def jobs(toolkit: E2BToolkit) -> Iterator[Jobs]:
    """The module's job tracker; a test ends its jobs after each example (``with jobs.ending()``)."""
    tracker = Jobs(toolkit)
    try:
        yield tracker
    finally:
        tracker.end_all()
