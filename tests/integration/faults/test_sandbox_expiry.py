"""Sandbox lifetimes: a sandbox with work running on it outlives its timeout (the worker extends it);
one that expires with nothing running is gone, and work on it errors clearly."""

from __future__ import annotations

import pytest

from tests.integration.faults.conftest import Stack, job_ended
from tests.procs import wait_for

SHORT = 10  # seconds of life asked for at create time


@pytest.mark.slow
def test_a_job_outliving_its_sandboxs_timeout_keeps_the_sandbox_alive(stack: Stack) -> None:
    stack.worker()
    toolkit = stack.toolkit(default_timeout=SHORT)
    sandbox_id = toolkit.list_managed_sandboxes()["default_sandbox_id"]
    job_id = toolkit.run_command_background(f"sleep {2 * SHORT + 5}; echo done")["job_id"]

    record = wait_for(
        lambda: (s := toolkit.get_job_status(job_id))["status"] != "running" and s,
        2 * SHORT + 5 + 60,
        "the job to end",
    )

    assert record["status"] == "done", record
    assert record["result"]["stdout"] == "done\n"
    # The sandbox is still there, with the state the job left.
    assert toolkit.run_command("echo alive", sandbox_id=sandbox_id)["stdout"] == "alive\n"
    assert sandbox_id in {e["sandbox_id"] for e in toolkit.list_managed_sandboxes()["sandboxes"]}


@pytest.mark.slow
def test_an_idle_sandbox_expires_and_work_on_it_errors_clearly(stack: Stack) -> None:
    stack.worker()
    toolkit = stack.toolkit(auto_create_default=False)
    # Nothing may touch it before it expires: work on a sandbox extends its life to cover the work.
    sandbox_id = toolkit.create_sandbox(timeout=3)["sandbox_id"]

    with stack.host.control() as control:
        wait_for(
            lambda: control.get(f"/sandboxes/{sandbox_id}").status_code == 404, 60, "the sandbox to expire"
        )

    assert sandbox_id not in {e["sandbox_id"] for e in toolkit.list_managed_sandboxes()["sandboxes"]}
    for answer in (
        toolkit.run_python_code("1 + 1", sandbox_id=sandbox_id),
        toolkit.run_command("echo hi", sandbox_id=sandbox_id),
    ):
        assert answer["status"] == "error", answer
        assert answer["message"].startswith(f"sandbox {sandbox_id} is not running"), answer
    job_id = toolkit.run_command_background("echo hi", sandbox_id=sandbox_id)["job_id"]
    record = job_ended(toolkit, job_id, 60, "the job to end")
    assert record["status"] == "error", record
    assert record["message"].startswith(f"sandbox {sandbox_id} is not running"), record
