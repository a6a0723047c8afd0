"""A namespace's job index: newest first, filtered by status or state, bounded, expired ids skipped."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace

import pytest
import redis

from e2bq.config import Settings
from e2bq.errors import InvalidInputError
from e2bq.stores.joblist import list_jobs
from e2bq.stores.jobs import JobStore
from e2bq.stores.keys import job_key, namespace_jobs_key


def new_job(jobs: JobStore, namespace: str | None = None) -> str:
    job_id = uuid.uuid4().hex
    jobs.create(job_id, "command", "sbx-1", namespace or jobs.settings.namespace)
    return job_id


def test_jobs_are_listed_newest_first(settings: Settings) -> None:
    jobs = JobStore(settings)
    made = [new_job(jobs) for _ in range(5)]
    listed = list_jobs(jobs, settings.namespace)
    assert [job["job_id"] for job in listed] == made[::-1]
    first = listed[-1]
    assert (first["status"], first["state"], first["kind"], first["sandbox_id"]) == (
        "running",
        "queued",
        "command",
        "sbx-1",
    )
    assert first["finished_at"] is None and first["message"] == "" and "result" not in first


def test_a_namespace_lists_only_its_own_jobs(settings: Settings) -> None:
    jobs = JobStore(settings)
    mine = new_job(jobs)
    new_job(jobs, namespace="someone-else")
    assert [job["job_id"] for job in list_jobs(jobs, settings.namespace)] == [mine]
    assert list_jobs(jobs, "nobody") == []


def test_limit_keeps_the_newest(settings: Settings) -> None:
    jobs = JobStore(settings)
    made = [new_job(jobs) for _ in range(7)]
    assert [job["job_id"] for job in list_jobs(jobs, settings.namespace, limit=3)] == made[:-4:-1]


def test_a_listing_filters_by_status_and_by_state(settings: Settings) -> None:
    jobs = JobStore(settings)
    queued, started, done, failed, cancelled = (new_job(jobs) for _ in range(5))
    for job_id in (started, done, failed):
        assert jobs.start(job_id, worker="w1")
    jobs.finish(done, "done", None)
    jobs.finish(failed, "error", None, "it broke")
    jobs.cancel(cancelled)

    def ids(state: str) -> list[str]:
        return [job["job_id"] for job in list_jobs(jobs, settings.namespace, state=state)]

    assert ids("running") == [started, queued]
    assert ids("queued") == [queued]
    assert ids("started") == [started]
    assert ids("done") == [done]
    assert ids("error") == [failed]
    assert ids("cancelled") == [cancelled]
    assert list_jobs(jobs, settings.namespace, state="error")[0]["message"] == "it broke"


def test_a_filtered_listing_reads_past_its_first_batch(settings: Settings) -> None:
    jobs = JobStore(settings)
    wanted = new_job(jobs)
    jobs.cancel(wanted)
    for _ in range(450):  # more than two batches of the index newer than it
        new_job(jobs)
    assert [job["job_id"] for job in list_jobs(jobs, settings.namespace, state="cancelled")] == [wanted]


def test_ids_whose_record_expired_are_skipped(settings: Settings, raw: redis.Redis) -> None:
    jobs = JobStore(settings)
    gone, kept = new_job(jobs), new_job(jobs)
    raw.delete(job_key(gone))
    assert [job["job_id"] for job in list_jobs(jobs, settings.namespace)] == [kept]


def test_the_index_drops_ids_older_than_the_ttl_and_expires(settings: Settings, raw: redis.Redis) -> None:
    jobs = JobStore(replace(settings, job_ttl=100))
    index = namespace_jobs_key(settings.namespace)
    raw.zadd(index, {"ancient": time.time() - 101, "recent": time.time() - 50})
    made = new_job(jobs)
    assert raw.zrange(index, 0, -1) == ["recent", made]
    assert 0 < raw.ttl(index) <= 100


@pytest.mark.parametrize(
    ("state", "limit", "complaint"),
    [
        ("finished", 10, "state must be one of running, done, error, cancelled"),
        (None, 0, "limit must be a whole number from 1 to 1000"),
        (None, True, "limit must be a whole number"),
        (None, 1001, "limit must be a whole number"),
    ],
)
def test_bad_filters_are_refused(settings: Settings, state: str | None, limit: int, complaint: str) -> None:
    with pytest.raises(InvalidInputError, match=complaint):
        list_jobs(JobStore(settings), settings.namespace, state=state, limit=limit)
