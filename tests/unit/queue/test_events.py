"""The job event stream: every transition is one entry, written with the transition, in order;
readers follow it from an id without missing what came after; the stream stays bounded. And the
outbox: a job end that asks for a callback is queued for delivery in the same step."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid

import redis

from e2bq.config import Settings
from e2bq.stores.events import START, JobEvents, event_line
from e2bq.stores.jobs import JobStore
from e2bq.stores.keys import EVENTS, OUTBOX, OUTBOX_WAKE
from e2bq.stores.outbox import Outbox


def new_job(jobs: JobStore, **notify: str) -> str:
    job_id = uuid.uuid4().hex
    jobs.create(job_id, "command", "sbx-1", jobs.settings.namespace, "node-a", notify=notify or None)
    return job_id


def test_a_job_s_transitions_are_events_in_order(settings: Settings) -> None:
    jobs, events = JobStore(settings), JobEvents(settings)
    job_id = new_job(jobs)
    jobs.receive(job_id, "w1")  # taking the message is no transition
    assert jobs.start(job_id, "w1")
    assert not jobs.start(job_id, "w2")  # a second claim changes nothing, so says nothing
    assert jobs.finish(job_id, "done", {"status": "success"})
    assert not jobs.finish(job_id, "error", None)
    history = events.history(job_id)
    assert [(e["event"], e["status"]) for e in history] == [
        ("queued", "running"),
        ("started", "running"),
        ("ended", "done"),
    ]
    record = jobs.get(job_id)
    assert record is not None
    for event in history:
        assert (event["job_id"], event["kind"], event["sandbox_id"], event["node"]) == (
            job_id, "command", "sbx-1", "node-a",
        )
    assert [e["worker"] for e in history] == ["", "w1", "w1"]
    assert [e["at"] for e in history] == [record["created_at"], record["started_at"], record["finished_at"]]
    assert len({e["id"] for e in history}) == 3


def test_a_cancel_is_an_event_and_a_cancelled_job_never_starts_or_ends_again(settings: Settings) -> None:
    jobs, events = JobStore(settings), JobEvents(settings)
    job_id = new_job(jobs)
    assert jobs.cancel(job_id)
    assert not jobs.start(job_id, "w1")
    assert not jobs.finish(job_id, "error", None)
    assert not jobs.cancel(job_id)
    assert [(e["event"], e["status"]) for e in events.history(job_id)] == [
        ("queued", "running"),
        ("cancelled", "cancelled"),
    ]


def test_a_follower_from_an_id_sees_what_comes_after_it_only(settings: Settings) -> None:
    jobs, events = JobStore(settings), JobEvents(settings)
    before = new_job(jobs)
    cursor = events.last_id()
    after = new_job(jobs)
    jobs.finish(before, "error", None, "failed")
    seen = events.read(cursor)
    assert [(e["job_id"], e["event"]) for e in seen] == [(after, "queued"), (before, "ended")]
    assert events.read(seen[-1]["id"]) == []
    assert [e["job_id"] for e in events.read(START)][:1] == [before]


def test_a_blocking_read_wakes_on_the_next_event_and_honours_its_bound(settings: Settings) -> None:
    jobs, events = JobStore(settings), JobEvents(settings)
    job_id = new_job(jobs)
    cursor = events.last_id()
    began = time.monotonic()
    assert events.read(cursor, block=0.3) == []
    assert time.monotonic() - began >= 0.25
    timer = threading.Timer(0.2, jobs.finish, args=(job_id, "done", None))
    timer.start()
    woke = events.read(cursor, block=10)
    timer.join()
    assert [(e["job_id"], e["event"]) for e in woke] == [(job_id, "ended")]


def test_follow_filters_one_job_and_yields_none_while_idle(settings: Settings) -> None:
    jobs, events = JobStore(settings), JobEvents(settings)
    mine, other = new_job(jobs), new_job(jobs)
    jobs.finish(other, "done", None)
    jobs.finish(mine, "done", None)
    followed = events.follow(after=START, job_id=mine, block=0.05)
    seen = [next(followed), next(followed), next(followed)]
    assert [e and (e["job_id"], e["event"]) for e in seen] == [(mine, "queued"), (mine, "ended"), None]


def test_the_stream_is_trimmed_to_about_its_bound(settings: Settings, raw: redis.Redis) -> None:
    jobs = JobStore(dataclasses.replace(settings, events_max=100))
    for _ in range(600):
        new_job(jobs)
    kept = raw.xlen(EVENTS)
    assert 100 <= kept < 600  # MAXLEN ~ trims whole nodes of the stream: about the bound, never below


def test_an_event_line_names_the_job_event_and_status(settings: Settings) -> None:
    jobs, events = JobStore(settings), JobEvents(settings)
    job_id = new_job(jobs)
    line = event_line(events.history(job_id)[0])
    assert f" {job_id} queued running kind=command sandbox_id=sbx-1 node=node-a" in line


def test_only_an_end_that_asks_for_a_delivery_is_queued_for_one(
    settings: Settings, raw: redis.Redis
) -> None:
    jobs = JobStore(settings)
    plain = new_job(jobs)
    called = new_job(jobs, callback_url="http://example.test/hook")
    linked = new_job(jobs, on_done="app.tasks.done", on_done_queue="celery")
    assert jobs.start(called, "w1")
    assert raw.zcard(OUTBOX) == 0  # nothing is due before the end
    jobs.finish(plain, "done", None)
    jobs.finish(called, "error", None, "boom")
    jobs.cancel(linked)
    assert set(raw.zrange(OUTBOX, 0, -1)) == {called, linked}
    assert raw.llen(OUTBOX_WAKE) == 2
    record = jobs.get(called)
    assert record is not None and record["callback_url"] == "http://example.test/hook"


def test_a_claim_holds_an_entry_for_its_lease_and_a_closed_one_is_gone(
    settings: Settings, raw: redis.Redis
) -> None:
    jobs, outbox = JobStore(settings), Outbox(settings)
    job_id = new_job(jobs, callback_url="http://example.test/hook")
    jobs.finish(job_id, "done", None)
    assert outbox.claim() == [job_id]
    assert outbox.claim() == []  # claimed: no other drainer takes it during the lease
    assert (raw.zscore(OUTBOX, job_id) or 0) > time.time() + outbox.lease - 5
    state = outbox.begin(job_id)
    assert state is not None and "first_at" in state
    assert outbox.begin(job_id) is None  # one attempt at a time
    outbox.again_at(job_id, time.time() - 1, attempts=1)
    assert outbox.claim() == [job_id]  # due again
    outbox.close(job_id, "delivered")
    assert raw.zscore(OUTBOX, job_id) is None
    assert outbox.state(job_id)["outcome"] == "delivered"
