"""A job whose worker was SIGKILLed: wait_job sees it end (with no reaper running, by checking for
the lost worker itself), and its callback is still delivered — by a worker started afterwards, as
the delivery was recorded with the end, not left to the worker that ended it."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.callback_receiver import receiver
from tests.integration.faults.conftest import Stack, kill_worker
from tests.procs import wait_for

SECRET = f"secret-{uuid.uuid4().hex}"
LOST_WITHIN = 90  # the heartbeat (15 s) plus wait_job's 2 s checks, with room for a loaded machine


@pytest.mark.slow
def test_a_lost_worker_s_job_ends_for_wait_job_and_still_calls_back(stack: Stack) -> None:
    keyed = {"E2BQ_CALLBACK_SECRET": SECRET, "E2BQ_CALLBACK_BACKOFF": "0.2"}
    doomed = stack.worker(env=keyed)
    toolkit = stack.toolkit(callback_secret=SECRET)
    with receiver(SECRET) as hooks:
        job_id = toolkit.run_command_background("sleep 600", callback_url=hooks.url)["job_id"]
        wait_for(lambda: toolkit.get_job_status(job_id).get("pid"), 60, "the sleep to start")

        kill_worker(doomed)  # the only worker: no reaper is left to end the job
        # (it was its node's only worker too, so the job ends as its worker's or its node's loss)

        began = time.monotonic()
        ended = toolkit.wait_job(job_id, timeout=LOST_WITHIN)
        assert ended["status"] == "error" and "lost" in ended["message"], ended
        assert time.monotonic() - began < LOST_WITHIN
        assert hooks.received == []  # no worker is alive to deliver it yet

        stack.worker(env=keyed)
        (got,) = hooks.wait_for(1, 60)
    assert got.record == toolkit.get_job_status(job_id)
    assert got.record["status"] == "error" and "lost" in got.record["message"]
