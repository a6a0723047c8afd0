"""Flower, started by `e2bq flower` on the same Redis, sees e2bq's workers and tasks by name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2bq import E2BToolkit
from e2bq.launch import start_flower
from tests.procs import WorkerProcess, wait_for


@pytest.fixture
def flower(client_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """A Flower on a free port whose API needs no login; yields its URL."""
    with start_flower(tmp_path, env=client_env) as running:
        yield running.url


def tasks_seen(url: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/api/tasks", timeout=10)
    answer.raise_for_status()
    return dict(answer.json())


def test_flower_lists_e2bq_tasks_by_name(
    flower: str, toolkit: E2BToolkit, queue_worker: WorkerProcess
) -> None:
    # Flower only learns of tasks from events sent after it subscribed: wait until the worker's
    # heartbeat (an event too) has reached it.
    online = f'flower_worker_online{{worker="{queue_worker.name}@'
    wait_for(
        lambda: any(
            line.startswith(online) and line.endswith(" 1.0")
            for line in httpx.get(f"{flower}/metrics").text.splitlines()
        ),
        30,
        "flower to hear the worker's heartbeat",
    )

    code = toolkit.run_python_code("1 + 1")
    command = toolkit.run_command("true")
    job = toolkit.run_command_background("echo in the background")
    assert code["status"] == command["status"] == "success"
    assert job["status"] == "accepted"

    def listed() -> dict[str, Any]:
        seen = tasks_seen(flower)
        names = {task.get("name") for task in seen.values()}
        return seen if {"e2bq.run_code", "e2bq.run_command"} <= names and job["job_id"] in seen else {}

    seen = wait_for(listed, 30, "flower to list the tasks")
    assert seen[job["job_id"]]["name"] == "e2bq.run_command"  # type: ignore[index]
    assert httpx.get(f"{flower}/api/tasks").status_code == 200
