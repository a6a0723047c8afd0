"""wait_for_end (wait_job's core): woken by the job's end, bounded by its timeout, and it ends a
job whose worker stopped beating by itself — no reaper is running here."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace

from e2bq.client.waiting import wait_for_end
from e2bq.config import Settings
from e2bq.stores.events import JobEvents
from e2bq.stores.jobs import JobStore
from e2bq.stores.keys import job_alive_key


def started_job(jobs: JobStore) -> str:
    job_id = uuid.uuid4().hex
    jobs.create(job_id, "code", "sbx-1", jobs.settings.namespace)
    assert jobs.start(job_id, "w1")
    return job_id


def test_the_wait_ends_when_the_job_does(settings: Settings) -> None:
    jobs, events = JobStore(settings), JobEvents(settings)
    job_id = started_job(jobs)
    ender = threading.Timer(0.3, jobs.finish, args=(job_id, "done", {"status": "success"}))
    ender.start()
    record, timed_out = wait_for_end(jobs, events, job_id, 30)
    ender.join()
    assert record is not None and (record["status"], timed_out) == ("done", False)


def test_an_end_before_the_wait_blocks_is_not_missed(settings: Settings) -> None:
    jobs, events = JobStore(settings), JobEvents(settings)
    job_id = started_job(jobs)
    cursor = events.last_id()  # as the wait does, before its first read of the job ...
    jobs.finish(job_id, "error", None, "boom")  # ... and the job ends right after that read
    assert [e["event"] for e in events.read(cursor, block=0.1)] == ["ended"]
    record, timed_out = wait_for_end(jobs, events, job_id, 5)
    assert record is not None and (record["status"], timed_out) == ("error", False)


def test_the_wait_honours_its_timeout_and_returns_the_running_record(settings: Settings) -> None:
    jobs, events = JobStore(settings), JobEvents(settings)
    job_id = started_job(jobs)
    began = time.monotonic()
    record, timed_out = wait_for_end(jobs, events, job_id, 0.5)
    assert 0.5 <= time.monotonic() - began < 3
    assert record is not None and (record["status"], timed_out) == ("running", True)
    assert wait_for_end(jobs, events, job_id, 0)[1]  # no wait at all: one look


def test_the_wait_ends_a_job_whose_worker_died(settings: Settings) -> None:
    # No worker is left to take it over: the wait ends it once the takeover wait has passed.
    settings = replace(settings, takeover_wait=1)
    jobs, events = JobStore(settings), JobEvents(settings)
    job_id = started_job(jobs)
    jobs.redis.delete(job_alive_key(job_id))  # its worker stopped beating (heartbeat_ttl is 1 s)
    began = time.monotonic()
    record, timed_out = wait_for_end(jobs, events, job_id, 30)
    assert time.monotonic() - began < 6
    assert record is not None and record["status"] == "error" and "worker lost" in record["message"]
    assert not timed_out


def test_no_job_no_wait(settings: Settings) -> None:
    jobs, events = JobStore(settings), JobEvents(settings)
    assert wait_for_end(jobs, events, "no-such-job", 30) == (None, False)
