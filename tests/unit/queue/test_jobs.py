"""The job store: queued → started → done/error/cancelled, terminal states stick, one claim wins."""

from __future__ import annotations

import threading
import uuid

import pytest
import redis

from e2bq.config import Settings
from e2bq.errors import InvalidInputError
from e2bq.stores.jobs import JobStore
from e2bq.stores.keys import STARTED_JOBS


def new_job(jobs: JobStore) -> str:
    job_id = uuid.uuid4().hex
    jobs.create(job_id, "command", "sbx-1", jobs.settings.namespace)
    return job_id


def test_a_new_job_is_running_and_queued(settings: Settings) -> None:
    jobs = JobStore(settings)
    job_id = new_job(jobs)
    record = jobs.get(job_id)
    assert record is not None
    assert (record["status"], record["state"], record["kind"]) == ("running", "queued", "command")
    assert record["task_id"] == job_id
    assert record["sandbox_id"] == "sbx-1"
    assert record["started_at"] is None and record["finished_at"] is None and record["result"] is None


def test_an_unknown_job_has_no_record(settings: Settings) -> None:
    assert JobStore(settings).get("no-such-job") is None


def test_a_job_id_is_used_once(settings: Settings) -> None:
    jobs = JobStore(settings)
    job_id = new_job(jobs)
    with pytest.raises(InvalidInputError, match="already in use"):
        jobs.create(job_id, "code", "sbx-1", settings.namespace)


def test_a_started_job_ends_done_with_its_result(settings: Settings) -> None:
    jobs = JobStore(settings)
    job_id = new_job(jobs)
    assert jobs.start(job_id, worker="w1")
    started = jobs.get(job_id)
    assert started is not None
    assert (started["status"], started["state"], started["worker"]) == ("running", "started", "w1")
    assert started["started_at"] is not None
    jobs.set_pid(job_id, 4242)
    result = {"status": "success", "sandbox_id": "sbx-1", "stdout": "hi\n", "stderr": "", "exit_code": 0}
    assert jobs.finish(job_id, "done", result)
    ended = jobs.get(job_id)
    assert ended is not None
    assert ended["status"] == "done"
    assert ended["result"] == result
    assert ended["pid"] == 4242
    assert ended["finished_at"] is not None


@pytest.mark.parametrize("first", ["done", "error", "cancelled"])
def test_terminal_states_stick(settings: Settings, first: str) -> None:
    jobs = JobStore(settings)
    job_id = new_job(jobs)
    jobs.start(job_id, worker="w1")
    if first == "cancelled":
        assert jobs.cancel(job_id)
    else:
        assert jobs.finish(job_id, first, None, "the first end")
    assert not jobs.finish(job_id, "done", None)
    assert not jobs.finish(job_id, "error", None, "too late")
    assert not jobs.cancel(job_id)
    assert not jobs.start(job_id, worker="w2")
    record = jobs.get(job_id)
    assert record is not None and record["status"] == first


def test_a_job_cancelled_while_queued_is_never_claimed(settings: Settings) -> None:
    jobs = JobStore(settings)
    job_id = new_job(jobs)
    assert jobs.cancel(job_id)
    assert jobs.is_cancelled(job_id)
    assert not jobs.start(job_id, worker="w1")
    record = jobs.get(job_id)
    assert record is not None
    assert (record["status"], record["state"]) == ("cancelled", "queued")
    assert record["message"] == "cancelled by kill_job"


def test_a_cancelled_running_job_is_not_revived_by_its_worker(settings: Settings) -> None:
    jobs = JobStore(settings)
    job_id = new_job(jobs)
    jobs.start(job_id, worker="w1")
    assert jobs.cancel(job_id)
    assert not jobs.finish(job_id, "done", {"status": "success"})
    record = jobs.get(job_id)
    assert record is not None and record["status"] == "cancelled" and record["result"] is None


def test_one_claim_wins_among_deliveries_racing(settings: Settings) -> None:
    job_id = new_job(JobStore(settings))
    stores = [JobStore(settings) for _ in range(8)]  # a connection each, as separate workers have
    barrier = threading.Barrier(len(stores))
    claims: list[bool] = []

    def claim(store: JobStore, worker: str) -> None:
        barrier.wait()
        claims.append(store.start(job_id, worker=worker))

    threads = [threading.Thread(target=claim, args=(s, f"w{i}")) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claims) == [False] * 7 + [True]


def test_output_keeps_a_bounded_tail_in_whole_characters(settings: Settings) -> None:
    jobs = JobStore(Settings(redis_url=settings.redis_url, output_tail_bytes=10))
    job_id = new_job(jobs)
    for _ in range(20):
        jobs.append_output(job_id, "é")  # two bytes each
    jobs.append_output(job_id, "end")
    record = jobs.get(job_id)
    assert record is not None
    output = record["output"]
    assert output.endswith("end")
    assert len(output.encode()) <= 2 * 10 + 3
    assert set(output[:-3]) == {"é"}


def test_reading_a_job_changes_nothing(settings: Settings, raw: redis.Redis) -> None:
    """A job whose worker is gone still reads ``running``: only an explicit end_if_lost ends it."""
    jobs = JobStore(settings)
    job_id = new_job(jobs)
    jobs.receive(job_id, worker="w1")  # taken...
    raw.delete(f"e2bq:job:{job_id}:alive")  # ...by a worker that died before starting it
    before = raw.hgetall(f"e2bq:job:{job_id}")
    for _ in range(3):
        record = jobs.get(job_id)
        assert record is not None and record["status"] == "running"
    assert raw.hgetall(f"e2bq:job:{job_id}") == before
    assert raw.sismember(STARTED_JOBS, job_id)


def test_brief_reads_a_jobs_kind_and_status_alone(settings: Settings) -> None:
    jobs = JobStore(settings)
    job_id = new_job(jobs)
    assert jobs.brief(job_id) == ("command", "running")
    jobs.finish(job_id, "done", {"status": "success", "stdout": "x" * 1000})
    assert jobs.brief(job_id) == ("command", "done")
    assert jobs.brief("no-such-job") is None
