"""Lost workers: a job whose worker stopped beating ends ``error``, by a reaper or an explicit check,
and the work a started one left running is handed to exactly one reaper to stop."""

from __future__ import annotations

import uuid

import redis

from e2bq.config import Settings
from e2bq.stores.jobs import LANES_LOST, LOST, LOST_BEFORE_START, JobStore
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


def test_the_reaper_ends_jobs_whose_worker_died_and_hands_out_their_work_once(
    settings: Settings, raw: redis.Redis
) -> None:
    jobs = JobStore(settings)
    started, taken, queued, alive = (new_job(jobs) for _ in range(4))
    jobs.start(started, worker="w-dead")
    jobs.receive(taken, worker="w-dead")
    jobs.start(alive, worker="w-alive")
    die(raw, started)
    die(raw, taken)

    # A started job has a heartbeat's grace after its start; the reaper ends it once that passed.
    def reaped() -> list[str] | None:
        jobs.heartbeat(alive, "w-alive")  # the live worker keeps beating meanwhile
        orphans = jobs.reap()
        return orphans or None

    assert wait_for(reaped, 10, "the reaper to end the started job") == [started]
    assert jobs.reap() == []  # handed out once
    assert status(jobs, started) == ("error", LOST)
    assert status(jobs, taken) == ("error", LOST_BEFORE_START)
    assert status(jobs, queued) == status(jobs, alive) == ("running", "")
    assert set(raw.smembers(STARTED_JOBS)) == {alive}


def test_a_job_taken_by_a_dead_worker_ends_when_it_is_checked(settings: Settings, raw: redis.Redis) -> None:
    jobs = JobStore(settings)
    job_id = new_job(jobs)
    jobs.receive(job_id, worker="w-dead")
    die(raw, job_id)
    assert jobs.end_if_lost(job_id)
    assert not jobs.end_if_lost(job_id)  # ended once
    assert status(jobs, job_id) == ("error", LOST_BEFORE_START)
    assert jobs.reap() == []  # nothing ran, so nothing is left to stop


def test_a_live_or_queued_job_is_not_lost(settings: Settings) -> None:
    jobs = JobStore(settings)
    queued, taken = new_job(jobs), new_job(jobs)
    jobs.receive(taken, worker="w1")
    assert not jobs.end_if_lost(queued)
    assert not jobs.end_if_lost(taken)
    assert not jobs.end_if_lost("no-such-job")
    assert jobs.reap() == []
    assert status(jobs, queued) == status(jobs, taken) == ("running", "")


def test_a_job_ended_elsewhere_leaves_the_reapers_watch(settings: Settings, raw: redis.Redis) -> None:
    jobs = JobStore(settings)
    job_id = new_job(jobs)
    jobs.start(job_id, worker="w1")
    raw.hset(f"e2bq:job:{job_id}", "status", '"done"')  # ended by a writer that did not tidy up
    raw.sadd(STARTED_JOBS, job_id)
    assert jobs.reap() == []
    assert not raw.sismember(STARTED_JOBS, job_id)


def test_a_map_whose_lanes_all_died_ends_saying_so(settings: Settings, raw: redis.Redis) -> None:
    jobs = JobStore(settings)
    job_id = uuid.uuid4().hex
    jobs.create(job_id, "map", "", settings.namespace)
    jobs.start(job_id, worker="w-dead")  # its first lane task started it; every lane task beat it
    die(raw, job_id)

    wait_for(lambda: jobs.end_if_lost(job_id), 10, "the map to be seen lost")

    assert status(jobs, job_id) == ("error", LANES_LOST)
