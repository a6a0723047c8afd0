"""A worker stopped with SIGTERM (warm shutdown) while a job runs: the job gets E2BQ_WORKER_GRACE
seconds; past them it is stopped and ends ``error`` saying the worker shut down — never ``running``."""

from __future__ import annotations

import signal

import pytest

from e2bq import E2BToolkit
from tests.integration.faults.conftest import Stack, job_ended
from tests.procs import wait_for

GRACE = {"E2BQ_WORKER_GRACE": "3"}
POOLS = {
    "threads": ("--pool", "threads", "--concurrency", "4"),
    "prefork": ("--pool", "prefork", "--concurrency", "2"),
}


def started(toolkit: E2BToolkit, job_id: str) -> None:
    wait_for(lambda: toolkit.get_job_status(job_id).get("pid"), 60, f"job {job_id}'s process to start")


@pytest.mark.slow
@pytest.mark.parametrize("pool", sorted(POOLS))
def test_a_job_longer_than_the_grace_ends_as_worker_shut_down(stack: Stack, pool: str) -> None:
    stopping = stack.worker(*POOLS[pool], env=GRACE)
    toolkit = stack.toolkit()
    job_id = toolkit.run_command_background("sleep 600")["job_id"]
    started(toolkit, job_id)

    stopping.proc.send_signal(signal.SIGTERM)

    assert stopping.proc.wait(timeout=60) == 0
    record = job_ended(toolkit, job_id, 5)  # ended by the worker itself, before it exited
    assert record["status"] == "error", record
    assert f"worker {stopping.name}@" in record["message"]
    assert "shut down before the job finished" in record["message"]
    # The job's process did not outlive it.
    stack.worker()
    listing = toolkit.run_command("ps -eo args")
    assert listing["status"] == "success", listing
    assert "sleep 600" not in listing["stdout"]


@pytest.mark.slow
def test_a_job_that_finishes_within_the_grace_ends_done(stack: Stack) -> None:
    stopping = stack.worker(env=GRACE)
    toolkit = stack.toolkit()
    job_id = toolkit.run_command_background("sleep 1; echo finished")["job_id"]
    started(toolkit, job_id)

    stopping.proc.send_signal(signal.SIGTERM)

    assert stopping.proc.wait(timeout=60) == 0
    record = job_ended(toolkit, job_id, 5)
    assert record["status"] == "done", record
    assert record["result"]["stdout"] == "finished\n"

