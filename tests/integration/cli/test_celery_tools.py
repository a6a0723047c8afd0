"""Celery's own tools work on e2bq's app (`celery -A workers.app ...`) against a running `e2bq worker`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from e2bq import E2BToolkit
from tests.procs import wait_for


def test_celery_inspect_active_shows_a_running_job(toolkit: E2BToolkit, stack_env: dict[str, str]) -> None:
    job_id = toolkit.run_command_background("sleep 120")["job_id"]
    try:
        wait_for(lambda: toolkit.get_job_status(job_id).get("state") == "started", 60, "the job to start")
        inspected = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "workers.app", "inspect", "active", "--json"],
            env={**os.environ, **stack_env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert inspected.returncode == 0, inspected.stderr
        active = json.loads(inspected.stdout)
        running = [task["id"] for tasks in active.values() for task in tasks]
        assert job_id in running
    finally:
        toolkit.kill_job(job_id)
