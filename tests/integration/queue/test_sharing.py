"""Two client processes on the same Redis and namespace share the managed sandboxes and the jobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from e2bq import E2BToolkit
from tests.procs import wait_for

OTHER_CLIENT = textwrap.dedent(
    """
    import json
    from e2bq import E2BToolkit, SandboxManager

    toolkit = E2BToolkit(SandboxManager(), auto_create_default=False)
    created = toolkit.create_sandbox(metadata={"owner": "the other process"})
    sandbox_id = created["sandbox_id"]
    toolkit.run_python_code("shared = 'set by the other process'", sandbox_id=sandbox_id)
    job = toolkit.run_command_background("sleep 60", sandbox_id=sandbox_id)
    print(json.dumps({"sandbox_id": sandbox_id, "job_id": job["job_id"]}))
    """
)


@pytest.fixture
def other_process(toolkit: E2BToolkit, client_env: dict[str, str]) -> dict[str, Any]:
    """What another client process, with the same environment, created and started, then exited."""
    done = subprocess.run(
        [sys.executable, "-c", OTHER_CLIENT],
        env={**os.environ, **client_env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    made: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return made


def test_a_sandbox_made_by_another_process_is_listed(
    toolkit: E2BToolkit, other_process: dict[str, Any]
) -> None:
    listing = toolkit.list_managed_sandboxes()

    assert listing["status"] == "success"
    entries = {entry["sandbox_id"]: entry for entry in listing["sandboxes"]}
    assert other_process["sandbox_id"] in entries
    assert entries[other_process["sandbox_id"]]["metadata"] == {"owner": "the other process"}
    assert listing["default_sandbox_id"] in entries  # this process's default, beside it


def test_code_runs_in_the_other_process_sandbox_with_its_state(
    toolkit: E2BToolkit, other_process: dict[str, Any]
) -> None:
    result = toolkit.run_python_code("shared", sandbox_id=other_process["sandbox_id"], timeout=30)

    assert result["status"] == "success", result
    assert result["results"][0]["text"] == "set by the other process"


def test_the_other_process_job_can_be_read_and_killed(
    toolkit: E2BToolkit, other_process: dict[str, Any]
) -> None:
    sandbox_id, job_id = other_process["sandbox_id"], other_process["job_id"]

    def sleeping() -> bool:
        listing = toolkit.run_command("ps -eo args", sandbox_id=sandbox_id)
        assert listing["status"] == "success", listing
        return "sleep 60" in listing["stdout"].splitlines()

    wait_for(sleeping, 60, "sleep 60 to run in the other process's sandbox")
    record = toolkit.get_job_status(job_id)
    assert record["status"] == "running"
    assert record["state"] == "started"
    assert record["sandbox_id"] == sandbox_id

    assert toolkit.kill_job(job_id)["status"] == "cancelled"

    assert toolkit.get_job_status(job_id)["status"] == "cancelled"
    wait_for(lambda: not sleeping(), 20, "sleep 60 to end in the other process's sandbox")
