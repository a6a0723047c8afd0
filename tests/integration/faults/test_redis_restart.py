"""Redis restarted mid-run (persistence on): job states and the registry survive, clients and workers
reconnect by themselves, and jobs enqueued before the restart are not lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.faults.conftest import Restartable, Stack, build_stack, job_ended
from tests.procs import free_port, redis_server, sandbox_host, wait_for

PERSISTENT = ("--appendonly", "yes", "--appendfsync", "always")


def managed(listing: dict[str, Any]) -> dict[str, tuple[object, ...]]:
    return {e["sandbox_id"]: (e["metadata"], e["created_at"], e["namespace"]) for e in listing["sandboxes"]}


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[Restartable[str]]:
    """A redis-server with an append-only file, restarted on the same port and in the same folder."""
    port = free_port()
    with Restartable(lambda: redis_server(tmp_path, *PERSISTENT, port=port)).running() as server:
        yield server


@pytest.fixture
def stack(tmp_path: Path, persistent_redis: Restartable[str]) -> Iterator[Stack]:
    with sandbox_host(tmp_path) as host, build_stack(tmp_path, persistent_redis.current, host) as built:
        yield built


@pytest.mark.slow
def test_state_survives_a_redis_restart_and_everyone_reconnects(
    stack: Stack, persistent_redis: Restartable[str]
) -> None:
    # Two slots: of the jobs below, two run, two wait in the worker and two in Redis's queue.
    worker = stack.worker("--concurrency", "2")
    toolkit = stack.toolkit()
    other = toolkit.create_sandbox(metadata={"owner": "faults"})["sandbox_id"]
    registry_before = toolkit.list_managed_sandboxes()
    finished = toolkit.run_command_background("echo finished-before")["job_id"]
    wait_for(lambda: toolkit.get_job_status(finished)["status"] == "done", 60, "the first job to end")
    pending = [toolkit.run_command_background(f"sleep 2; echo pending-{i}")["job_id"] for i in range(6)]
    wait_for(lambda: toolkit.get_job_status(pending[0]).get("state") == "started", 60, "a job to start")

    persistent_redis.restart()

    # Nothing was restarted but Redis: the same client and worker carry on.
    for i, job_id in enumerate(pending):
        record = job_ended(toolkit, job_id, 120, f"job {job_id} (enqueued before the restart) to end")
        assert record["status"] == "done", record
        assert record["result"]["stdout"] == f"pending-{i}\n"
    again = toolkit.get_job_status(finished)
    assert again["status"] == "done"
    assert again["result"]["stdout"] == "finished-before\n"
    # The same sandboxes (their expiry may have moved on: work on a sandbox extends its life).
    registry_after = toolkit.list_managed_sandboxes()
    assert managed(registry_after) == managed(registry_before)
    assert other in managed(registry_after)
    assert registry_after["default_sandbox_id"] == registry_before["default_sandbox_id"]
    answer = toolkit.run_python_code("6 * 7", timeout=30)
    assert answer["status"] == "success", answer
    assert answer["results"][0]["text"] == "42"
    job_id = toolkit.run_command_background("echo after")["job_id"]
    wait_for(lambda: toolkit.get_job_status(job_id)["status"] == "done", 60, "a job sent after the restart")
    assert worker.proc.poll() is None
