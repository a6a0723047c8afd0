"""A worker SIGKILLed mid-job: its jobs end ``error`` ("worker lost") and never stay ``running``;
what they left running in the sandbox is stopped by the reaper of a worker still alive."""

from __future__ import annotations

import uuid

import pytest

from e2bq import E2BToolkit
from tests.integration.faults.conftest import Stack, job_ended, kill_worker
from tests.procs import wait_for

POOLS = {
    "threads": ("--pool", "threads", "--concurrency", "4"),
    "prefork": ("--pool", "prefork", "--concurrency", "3"),
}
# A lost job is noticed once its heartbeat (15 s) lapses: by a reader at once, by a reaper (every
# 10 s) soon after; the bound leaves room for a loaded machine.
LOST_WITHIN = 90


def sandbox_processes(toolkit: E2BToolkit, sandbox_id: str) -> list[str]:
    listing = toolkit.run_command("ps -eo args", sandbox_id=sandbox_id)
    assert listing["status"] == "success", listing
    return [line.strip() for line in listing["stdout"].splitlines()[1:]]


@pytest.mark.slow
@pytest.mark.parametrize("pool", sorted(POOLS))
def test_jobs_of_a_killed_worker_end_as_worker_lost_and_their_work_stops(stack: Stack, pool: str) -> None:
    # The doomed worker serves a queue of its own, so the survivor (which also reaps) takes none of
    # its jobs; both share the job store and the registry.
    doomed_queue = f"{stack.env['E2BQ_QUEUE']}-doomed-{uuid.uuid4().hex[:6]}"
    stack.worker()
    doomed = stack.worker(*POOLS[pool], env={"E2BQ_QUEUE": doomed_queue})
    toolkit = stack.toolkit()
    sandbox_id = toolkit.list_managed_sandboxes()["default_sandbox_id"]
    on_doomed = stack.toolkit(auto_create_default=False, queue=doomed_queue)
    reaped = on_doomed.run_command_background("sleep 600", sandbox_id=sandbox_id)["job_id"]
    read = on_doomed.run_command_background("sleep 601", sandbox_id=sandbox_id)["job_id"]
    code = on_doomed.run_python_code_background(
        "import time\nprint('sleeping', flush=True)\ntime.sleep(600)\nwoke = True", sandbox_id=sandbox_id
    )["job_id"]
    wait_for(lambda: {"sleep 600", "sleep 601"} <= set(sandbox_processes(toolkit, sandbox_id)), 60, "sleeps")
    wait_for(lambda: "sleeping" in toolkit.get_job_status(code).get("output", ""), 60, "the code to run")

    kill_worker(doomed)

    # Read: the job a client asks about ends as soon as its heartbeat lapses.
    for job_id in (read, code):
        record = job_ended(toolkit, job_id, LOST_WITHIN)
        assert record["status"] == "error", record
        assert "worker lost" in record["message"]
        assert record["finished_at"] is not None
    # Reaped: nobody asks about this one; its process goes because the survivor's reaper ended it.
    wait_for(lambda: "sleep 600" not in sandbox_processes(toolkit, sandbox_id), LOST_WITHIN, "sleep 600 gone")
    record = toolkit.get_job_status(reaped)
    assert record["status"] == "error", record
    assert "worker lost" in record["message"]
    # A lost job noticed by a reader has its process stopped too.
    wait_for(lambda: "sleep 601" not in sandbox_processes(toolkit, sandbox_id), LOST_WITHIN, "sleep 601 gone")
    # The cell was interrupted when its worker went: the kernel is free, and it never woke.
    after = toolkit.run_python_code("'woke' in globals()", timeout=10)
    assert after["status"] == "success", after
    assert after["results"][0]["text"] == "False"
    # Ended jobs stay ended.
    assert {toolkit.get_job_status(j)["status"] for j in (reaped, read, code)} == {"error"}
