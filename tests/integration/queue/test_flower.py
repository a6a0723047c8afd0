"""Flower, started by `e2bq flower` on the same Redis, sees e2bq's workers and tasks by name."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2bq import E2BToolkit
from tests.procs import WorkerProcess, free_port, stop, wait_for


@pytest.fixture
def flower(client_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """A Flower on a free port whose API needs no login; yields its URL."""
    port = free_port()
    log = tmp_path / "flower.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "e2bq.cli", "flower", "--port", str(port), "--address", "127.0.0.1"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **client_env, "FLOWER_UNAUTHENTICATED_API": "true"},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: proc.poll() is None and httpx.get(f"{url}/healthcheck").status_code == 200,
            60,
            f"flower to answer (log: {log})",
        )
        yield url
    finally:
        stop(proc)


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
