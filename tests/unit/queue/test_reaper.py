"""Lost workers: a code or command job whose worker stopped beating is handed over to another worker
by a reaper, once; a job nobody takes over, or lost time after time, ends ``error`` — and the work
a started one left running is handed to exactly one reaper to stop."""

from __future__ import annotations

import uuid
from dataclasses import replace

import redis

from e2bq.config import Settings
from e2bq.stores.jobs import LANES_LOST, LOST, LOST_BEFORE_START, MAX_TAKEOVERS, JobStore, Reaped
from e2bq.stores.keys import STARTED_JOBS, job_alive_key
from tests.procs import wait_for


def new_job(jobs: JobStore) -> str:
    job_id = uuid.uuid4().hex
    jobs.create(job_id, "command", "sbx-1", jobs.settings.namespace)
    return job_id


def status(jobs: JobStore, job_id: str) -> tuple[str, str]:
    record = jobs.get(job_id)
    assert record is not None
    if record["status"] != "running":
        assert record["finished_at"] is not None
    return record["status"], record["message"]


def die(raw: redis.Redis, job_id: str) -> None:
    """The job's worker is gone: nothing renews its heartbeat (here it lapses at once)."""
    raw.delete(job_alive_key(job_id))


def test_the_reaper_hands_over_jobs_whose_worker_died_once(settings: Settings, raw: redis.Redis) -> None:
    jobs = JobStore(settings)
    started, taken, queued, alive = (new_job(jobs) for _ in range(4))
    jobs.start(started, worker="w-dead")
    jobs.receive(taken, worker="w-dead")
    jobs.start(alive, worker="w-alive")
    die(raw, started)
    die(raw, taken)

    # A started job has a heartbeat's grace after its start; the reaper hands it over once that passed.
    handed: list[tuple[str, int]] = []

    def reaped() -> bool:
        jobs.heartbeat(alive, "w-alive")  # the live worker keeps beating meanwhile
        round_ = jobs.reap()
        assert round_.orphans == []  # nothing is ended: both are taken over
        handed.extend(round_.handed_over)
        return {job for job, _ in handed} == {started, taken}

    wait_for(reaped, 10, "the reaper to hand over both jobs")
    assert sorted(handed) == sorted([(started, 1), (taken, 1)])  # each handed over once
    assert jobs.reap() == Reaped([], [])  # and not again while its new worker is due
    for job_id, was in ((started, "started"), (taken, "queued")):
        record = jobs.get(job_id)
        assert record is not None
        assert (record["status"], record["state"]) == ("running", "handed_over")
        assert record.get("handed_from") == was
        assert record.get("takeovers") == 1
    assert status(jobs, queued) == status(jobs, alive) == ("running", "")


def test_a_job_handed_over_is_claimed_once_and_never_by_its_first_message(
    settings: Settings, raw: redis.Redis
) -> None:
    jobs = JobStore(settings)
    job_id = new_job(jobs)
    jobs.receive(job_id, worker="w-dead")
    die(raw, job_id)
    assert jobs.reap().handed_over == [(job_id, 1)]
    assert not jobs.start(job_id, worker="w-late")  # the first message, delivered again: not run
    assert jobs.start(job_id, worker="w-new", takeover=True)
    assert not jobs.start(job_id, worker="w-other", takeover=True)  # a second takeover message
    record = jobs.get(job_id)
    assert record is not None and (record["state"], record["worker"]) == ("started", "w-new")
    # A worker that could not beat in time but lives on learns on its next beat that it must stop.
    assert not jobs.heartbeat(job_id, "w-dead")
    assert jobs.heartbeat(job_id, "w-new")


def test_a_job_lost_time_after_time_ends_once_its_takeovers_are_spent(
    settings: Settings, raw: redis.Redis
) -> None:
    jobs = JobStore(settings)
    job_id = new_job(jobs)
    jobs.receive(job_id, worker="w-dead")
    for number in range(1, MAX_TAKEOVERS + 1):
        die(raw, job_id)
        assert jobs.reap().handed_over == [(job_id, number)]
    die(raw, job_id)
    assert jobs.reap() == Reaped([], [])  # never started: nothing is left to stop
    state, message = status(jobs, job_id)
    assert state == "error" and message == LOST_BEFORE_START


def test_a_reader_ends_a_lost_job_nobody_takes_over(settings: Settings, raw: redis.Redis) -> None:
    jobs = JobStore(replace(settings, takeover_wait=0.2))
    started, taken = new_job(jobs), new_job(jobs)
    jobs.receive(taken, worker="w-dead")
    raw.hset(f"e2bq:job:{started}", mapping={"state": '"started"', "started_at": "0"})
    raw.sadd(STARTED_JOBS, started)
    for job_id in (started, taken):
        die(raw, job_id)
        assert not jobs.end_if_lost(job_id)  # first seen lost: a reaper may still take it over
    wait_for(lambda: jobs.end_if_lost(started) and jobs.end_if_lost(taken), 10, "the takeover wait to pass")
    state, message = status(jobs, started)
    assert state == "error" and message.startswith(LOST) and "E2BQ_TAKEOVER_WAIT" in message
    assert status(jobs, taken) == ("error", LOST_BEFORE_START)
    assert jobs.reap().orphans == [started]  # its work is stopped by one reaper; nothing ran for the other


def test_a_live_or_queued_job_is_not_lost(settings: Settings) -> None:
    jobs = JobStore(settings)
    queued, taken = new_job(jobs), new_job(jobs)
    jobs.receive(taken, worker="w1")
    assert not jobs.end_if_lost(queued)
    assert not jobs.end_if_lost(taken)
    assert not jobs.end_if_lost("no-such-job")
    assert jobs.reap() == Reaped([], [])
    assert status(jobs, queued) == status(jobs, taken) == ("running", "")


def test_a_job_ended_elsewhere_leaves_the_reapers_watch(settings: Settings, raw: redis.Redis) -> None:
    jobs = JobStore(settings)
    job_id = new_job(jobs)
    jobs.start(job_id, worker="w1")
    raw.hset(f"e2bq:job:{job_id}", "status", '"done"')  # ended by a writer that did not tidy up
    raw.sadd(STARTED_JOBS, job_id)
    assert jobs.reap() == Reaped([], [])
    assert not raw.sismember(STARTED_JOBS, job_id)


def test_a_map_whose_lanes_all_died_ends_saying_so(settings: Settings, raw: redis.Redis) -> None:
    jobs = JobStore(settings)
    job_id = uuid.uuid4().hex
    jobs.create(job_id, "map", "", settings.namespace)
    jobs.start(job_id, worker="w-dead")  # its first lane task started it; every lane task beat it
    die(raw, job_id)

    wait_for(lambda: jobs.end_if_lost(job_id), 10, "the map to be seen lost")

    assert status(jobs, job_id) == ("error", LANES_LOST)
