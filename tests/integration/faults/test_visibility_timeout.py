"""Jobs longer than the broker's visibility timeout run exactly once.

Redis gives a message nobody acknowledged within the visibility timeout to another consumer, and a
worker that starts sweeps overdue messages back onto the queue. Here the timeout is 5 s, jobs take
~15 s, one worker's only slot is busy while the next job waits, and a second worker starts once that
job is overdue: every chance for a redelivery. Each job appends a line to a file in the sandbox when
it runs, so a second run would show. And when a job's message does arrive twice (as it may after a
broker connection is lost), only one delivery runs it.
"""

from __future__ import annotations

import time

import pytest

from e2bq import E2BToolkit
from e2bq import protocol as tasks
from tests.integration.faults.conftest import Stack, job_ended
from tests.procs import wait_for

VISIBILITY = 5
RUNS = "/home/user/runs"


def workers_idle(toolkit: E2BToolkit, count: int) -> bool:
    active = toolkit.dispatcher.app.control.inspect(timeout=2).active() or {}
    return len(active) == count and not any(active.values())


def job_command(tag: str) -> str:
    return f"echo {tag} >> {RUNS}; sleep 15; echo {tag}"


@pytest.mark.slow
def test_jobs_longer_than_the_visibility_timeout_run_once(stack: Stack) -> None:
    stack.env["E2BQ_VISIBILITY_TIMEOUT"] = str(VISIBILITY)
    stack.worker("--concurrency", "1")
    toolkit = stack.toolkit()
    tags = ["first", "reserved"]
    first, reserved = (toolkit.run_command_background(job_command(tag))["job_id"] for tag in tags)
    wait_for(lambda: toolkit.get_job_status(first).get("pid"), 60, "the first job to run")
    # The second job waits past the visibility timeout (a worker that reserved it behind its busy
    # slot would hold it unacknowledged all that time)...
    wait_for(
        lambda: (s := toolkit.get_job_status(reserved))["state"] == "queued"
        and time.time() - s["created_at"] > VISIBILITY + 1,
        60,
        "the waiting job to be overdue",
    )
    # ...when a second worker starts, sweeping overdue messages back onto the queue.
    stack.worker("--concurrency", "1")

    for job_id, tag in zip((first, reserved), tags, strict=True):
        record = job_ended(toolkit, job_id, 120, f"job {tag} to end")
        assert record["status"] == "done", record
        assert record["result"]["stdout"] == f"{tag}\n"
    # Both workers are idle again: any second run has happened by now.
    runs = toolkit.run_command(f"cat {RUNS}")
    assert runs["status"] == "success", runs
    assert sorted(runs["stdout"].splitlines()) == sorted(tags)


@pytest.mark.slow
def test_a_job_delivered_twice_runs_once(stack: Stack) -> None:
    for _ in range(2):
        stack.worker("--concurrency", "2")
    toolkit = stack.toolkit()
    sandbox_id = toolkit.list_managed_sandboxes()["default_sandbox_id"]
    job_id = toolkit.run_command_background(job_command("twice"))["job_id"]
    # The same message again, as Redis would redeliver it: same task, same id.
    toolkit.dispatcher.submit(
        tasks.RUN_COMMAND,
        {"sandbox_id": sandbox_id, "job": True, "command": job_command("twice")},
        task_id=job_id,
    )

    record = job_ended(toolkit, job_id, 120, "the job to end")
    assert record["status"] == "done", record
    wait_for(lambda: workers_idle(toolkit, 2), 60, "both workers to be idle")
    runs = toolkit.run_command(f"cat {RUNS}")
    assert runs["stdout"].splitlines() == ["twice"]
