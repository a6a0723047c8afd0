"""A worker SIGKILLed mid-job: another worker takes its jobs over and re-attaches to their work —
a command by its process, code by its still-running cell — so each job ends with its real outcome
and its work runs exactly once; a job taken but never started is run, once; kill_job stops a job
taken over; a job nobody takes over still ends (``worker lost``) instead of staying ``running``."""

from __future__ import annotations

import uuid

import pytest

from e2bq import E2BToolkit
from e2bq.launch import WorkerProcess
from e2bq.stores.events import JobEvents
from e2bq.stores.jobs import JobStore
from tests.integration.faults.conftest import Stack, job_ended, kill_worker
from tests.procs import wait_for

POOLS = {
    "threads": ("--pool", "threads", "--concurrency", "4"),
    "prefork": ("--pool", "prefork", "--concurrency", "3"),
}
# A lost job is noticed once its heartbeat (15 s) lapses, and handed over by a reaper (every 10 s)
# soon after; the bound leaves room for a loaded machine.
TAKEN_WITHIN = 120


def effects(toolkit: E2BToolkit, sandbox_id: str, name: str) -> list[str]:
    """The lines the jobs appended to ``~/<name>`` in the sandbox."""
    read = toolkit.run_command(f"cat ~/{name} 2>/dev/null || true", sandbox_id=sandbox_id)
    assert read["status"] == "success", read
    return read["stdout"].split()


def sandbox_processes(toolkit: E2BToolkit, sandbox_id: str) -> list[str]:
    listing = toolkit.run_command("ps -eo args", sandbox_id=sandbox_id)
    assert listing["status"] == "success", listing
    return [line.strip() for line in listing["stdout"].splitlines()[1:]]


def doomed_and_survivor(stack: Stack, pool: str) -> tuple[E2BToolkit, E2BToolkit, WorkerProcess]:
    """A surviving worker on the stack's queues, and a doomed one on queues of its own (so the
    survivor takes none of its jobs until it takes them over)."""
    doomed_queue = f"{stack.env['E2BQ_QUEUE']}-doomed-{uuid.uuid4().hex[:6]}"
    stack.worker()
    doomed = stack.worker(*POOLS[pool], env={"E2BQ_QUEUE": doomed_queue})
    return stack.toolkit(), stack.toolkit(auto_create_default=False, queue=doomed_queue), doomed


@pytest.mark.slow
@pytest.mark.parametrize("pool", sorted(POOLS))
def test_jobs_of_a_killed_worker_are_taken_over_and_end_with_their_real_outcome(
    stack: Stack, pool: str
) -> None:
    toolkit, on_doomed, doomed = doomed_and_survivor(stack, pool)
    sandbox_id = toolkit.list_managed_sandboxes()["default_sandbox_id"]
    # Still running when the job is taken over, and ended while no worker followed it: both kinds.
    long_command = on_doomed.run_command_background(
        "echo begun >> ~/commands; sleep 30; echo ended >> ~/commands; echo finished; exit 3",
        sandbox_id=sandbox_id,
    )["job_id"]
    short_command = on_doomed.run_command_background(
        "echo short >> ~/commands; sleep 2; echo quick", sandbox_id=sandbox_id
    )["job_id"]
    code = on_doomed.run_python_code_background(
        "import time\nprint('sleeping', flush=True)\ntime.sleep(30)\n"
        "open('/home/user/cells', 'a').write('cell\\n')\nprint('woke')\n6 * 7",
        sandbox_id=sandbox_id,
    )["job_id"]
    wait_for(lambda: effects(toolkit, sandbox_id, "commands").count("short") == 1, 60, "the commands to run")
    wait_for(lambda: "sleeping" in toolkit.get_job_status(code).get("output", ""), 60, "the code to run")

    kill_worker(doomed)

    record = job_ended(toolkit, long_command, TAKEN_WITHIN)
    assert record["status"] == "error", record  # exit 3: the command's own outcome, not "worker lost"
    assert record["result"]["exit_code"] == 3, record
    assert "finished" in record["result"]["stdout"], record  # output after the takeover is collected
    assert record["takeovers"] == 1, record
    record = job_ended(toolkit, short_command, TAKEN_WITHIN)
    assert record["status"] == "done", record
    assert record["result"]["exit_code"] == 0, record
    record = job_ended(toolkit, code, TAKEN_WITHIN)
    assert record["status"] == "done", record
    assert record["result"]["results"][0]["text"] == "42", record
    assert "woke" in record["result"]["logs"]["stdout"][-1], record
    # Its output, written partly by the lost worker and partly by the new one, holds each line once.
    assert toolkit.get_job_output(code, stream="stdout")["data"] == "sleeping\nwoke\n"
    # Each job's work happened once: nothing was run a second time by the takeover.
    assert sorted(effects(toolkit, sandbox_id, "commands")) == ["begun", "ended", "short"]
    assert effects(toolkit, sandbox_id, "cells") == ["cell"]


@pytest.mark.slow
def test_a_job_taken_over_can_be_killed(stack: Stack) -> None:
    toolkit, on_doomed, doomed = doomed_and_survivor(stack, "threads")
    sandbox_id = toolkit.list_managed_sandboxes()["default_sandbox_id"]
    command = on_doomed.run_command_background("sleep 600", sandbox_id=sandbox_id)["job_id"]
    code = on_doomed.run_python_code_background(
        "import time\nprint('sleeping', flush=True)\ntime.sleep(600)\nwoke = True", sandbox_id=sandbox_id
    )["job_id"]
    wait_for(lambda: "sleep 600" in sandbox_processes(toolkit, sandbox_id), 60, "the command to run")
    wait_for(lambda: "sleeping" in toolkit.get_job_status(code).get("output", ""), 60, "the code to run")

    kill_worker(doomed)
    for job_id in (command, code):
        wait_for(
            lambda job_id=job_id: (r := toolkit.get_job_status(job_id)).get("takeovers") == 1
            and r["state"] == "started",
            TAKEN_WITHIN,
            f"job {job_id} to be taken over",
        )
        assert toolkit.kill_job(job_id)["status"] == "cancelled"
        assert job_ended(toolkit, job_id)["status"] == "cancelled"

    wait_for(lambda: "sleep 600" not in sandbox_processes(toolkit, sandbox_id), 60, "sleep 600 gone")
    # The cell was interrupted: the kernel is free, and it never woke.
    after = toolkit.run_python_code("'woke' in globals()", timeout=30)
    assert after["status"] == "success", after
    assert after["results"][0]["text"] == "False"


@pytest.mark.slow
def test_a_job_taken_but_never_started_is_run_once(stack: Stack) -> None:
    stack.worker()
    toolkit = stack.toolkit()
    sandbox_id = toolkit.list_managed_sandboxes()["default_sandbox_id"]
    # Its message goes to a queue no worker serves; a worker's consumer takes it (the job store is
    # told, as on every message) and dies before the job starts.
    nowhere = stack.toolkit(auto_create_default=False, queue=f"nowhere-{uuid.uuid4().hex[:6]}")
    job_id = nowhere.run_command_background("echo once >> ~/taken", sandbox_id=sandbox_id)["job_id"]
    JobStore(stack.settings()).receive(job_id, "celery@a-worker-that-died")

    record = job_ended(toolkit, job_id, TAKEN_WITHIN)
    assert record["status"] == "done", record
    assert record["takeovers"] == 1, record
    assert effects(toolkit, sandbox_id, "taken") == ["once"]
    events = [event["event"] for event in JobEvents(stack.settings()).history(job_id)]
    assert events == ["queued", "handed_over", "taken_over", "ended"], events


@pytest.mark.slow
def test_a_job_nobody_takes_over_ends_as_worker_lost(stack: Stack) -> None:
    # No worker is left to take it over: a reader ends it, as soon as the node is lost (no worker
    # of it beats), or once the takeover wait has passed, whichever comes first.
    doomed = stack.worker(env={"E2BQ_TAKEOVER_WAIT": "1"})
    toolkit = stack.toolkit(takeover_wait=1)
    sandbox_id = toolkit.list_managed_sandboxes()["default_sandbox_id"]
    job_id = toolkit.run_command_background("sleep 600", sandbox_id=sandbox_id)["job_id"]
    wait_for(lambda: toolkit.get_job_status(job_id).get("state") == "started", 60, "the job to start")

    kill_worker(doomed)

    record = job_ended(toolkit, job_id, TAKEN_WITHIN)
    assert record["status"] == "error", record
    message, node_lost = record["message"], f"node {stack.settings().node} is lost"
    assert ("worker lost" in message and "took it over" in message) or node_lost in message, record
