"""A worker stopped with SIGTERM (warm shutdown) while a job runs: the job gets E2BQ_WORKER_GRACE
seconds; past them it is handed over to another worker with its work left running (a rolling
restart loses nothing), or, when its work cannot outlive its worker, stopped and ended ``error``
saying the worker shut down — never left ``running``."""

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
def test_a_job_longer_than_the_grace_is_handed_over_to_the_next_worker(stack: Stack, pool: str) -> None:
    stopping = stack.worker(*POOLS[pool], env=GRACE)
    toolkit = stack.toolkit()
    command = toolkit.run_command_background("echo begun >> ~/rolled; sleep 12; echo finished")["job_id"]
    code = toolkit.run_python_code_background(
        "import time\nprint('sleeping', flush=True)\ntime.sleep(12)\n"
        "open('/home/user/rolled', 'a').write('cell\\n')\n'woke'"
    )["job_id"]
    started(toolkit, command)
    wait_for(lambda: "sleeping" in toolkit.get_job_status(code).get("output", ""), 60, "the code to run")

    stopping.proc.send_signal(signal.SIGTERM)

    assert stopping.proc.wait(timeout=60) == 0
    for job_id in (command, code):  # handed over by the worker itself, before it exited
        record = toolkit.get_job_status(job_id)
        assert (record["status"], record["state"], record.get("takeovers")) == ("running", "handed_over", 1)
    stack.worker()  # the rolling restart's next worker
    record = job_ended(toolkit, command, 60)
    assert record["status"] == "done", record
    assert "finished" in record["result"]["stdout"], record
    record = job_ended(toolkit, code, 60)
    assert record["status"] == "done", record
    assert record["result"]["results"][0]["text"] == "woke", record
    rolled = toolkit.run_command("cat ~/rolled")
    assert sorted(rolled["stdout"].split()) == ["begun", "cell"], rolled  # each ran once


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

