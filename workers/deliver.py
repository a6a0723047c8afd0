"""Delivering a job's end: its ``on_done`` task and its signed ``callback_url`` POST.

The ``e2bq.deliver_job_end`` task makes one delivery attempt for a job the outbox drainer claimed
(``workers/outbox.py``, ``e2bq.stores.outbox``): it sends the on_done task once, then POSTs the
final record; a failure worth retrying moves the job's outbox entry to its next attempt's time,
which the drainer picks up then. See ``e2bq.callbacks`` for the request and the retry policy.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from e2bq import callbacks
from e2bq.config import Settings
from e2bq.stores.jobs import JobStore
from e2bq.stores.maps import MapStore
from e2bq.stores.outbox import Outbox
from e2bq.types import JobRecord

log = logging.getLogger("e2bq.worker")


@dataclass(frozen=True)
class _Delivery:
    settings: Settings
    jobs: JobStore
    maps: MapStore
    outbox: Outbox
    http: httpx.Client  # one per process: a new client per POST costs ~40 ms (its TLS context)


SendTask = Callable[..., object]  # Celery.send_task


@functools.cache
def _context() -> _Delivery:
    """This process's settings and stores, made on first use (after Celery's fork)."""
    settings = Settings.from_env()
    jobs = JobStore(settings)
    http = httpx.Client(timeout=settings.callback_timeout, follow_redirects=False)
    return _Delivery(settings, jobs, MapStore(settings, jobs.redis), Outbox(settings, jobs.redis), http)


def deliver_job_end(job_id: str, send_task: SendTask) -> str:
    """The ``e2bq.deliver_job_end`` task's work: one delivery attempt, with this process's stores."""
    return deliver(_context(), job_id, send_task)


def final_record(ctx: _Delivery, job_id: str) -> JobRecord | None:
    """The job's record as get_job_status reports it once it ended (a map's with its counts)."""
    record = ctx.jobs.get(job_id)
    if record is not None and record["kind"] == "map":
        progress = ctx.maps.progress(job_id)
        if progress is not None:
            record["total"], record["done"], record["failed"] = (
                progress["total"], progress["done"], progress["failed"],
            )
    return record


def deliver(ctx: _Delivery, job_id: str, send_task: SendTask) -> str:
    """One delivery attempt for ``job_id``'s end; what came of it, in words."""
    state = ctx.outbox.begin(job_id)
    if state is None:
        return "another attempt is under way"
    if state.get("outcome"):  # a claim that outlived its lease: the delivery is already over
        ctx.outbox.close(job_id, state["outcome"])
        return state["outcome"]
    record = final_record(ctx, job_id)
    if record is None:
        ctx.outbox.close(job_id, "given up: the job's record is gone (expired)")
        return "gone"
    on_done = record.get("on_done")
    if on_done and not state.get("on_done_sent"):
        queue = record.get("on_done_queue") or callbacks.DEFAULT_ON_DONE_QUEUE
        send_task(on_done, args=[record], queue=queue)
        ctx.outbox.note(job_id, {"on_done_sent": time.time()})
    url = record.get("callback_url")
    if not url:
        ctx.outbox.close(job_id, "delivered")
        return "delivered"
    attempts = int(state.get("attempts") or 0) + 1
    retry, why = _post(ctx, url, job_id, record, attempts)
    if why is None:
        ctx.outbox.close(job_id, "delivered")
        return "delivered"
    delay = callbacks.backoff(ctx.settings, attempts)
    first_at = float(state.get("first_at") or time.time())
    within = time.time() + delay - first_at <= ctx.settings.callback_max_seconds
    if retry and attempts < ctx.settings.callback_attempts and within:
        ctx.outbox.again_at(job_id, time.time() + delay, attempts)
        return f"attempt {attempts} failed ({why}); next in {delay:g} s"
    log.warning("callback of job %s given up after %d attempts: %s", job_id, attempts, why)
    ctx.outbox.close(job_id, f"given up after {attempts} attempts: {why}")
    return "given up"


def _post(ctx: _Delivery, url: str, job_id: str, record: JobRecord, attempt: int) -> tuple[bool, str | None]:
    """POST the record: (worth retrying, why it failed — None when it was delivered)."""
    secret = ctx.settings.callback_secret
    if not secret:
        log.error("job %s has a callback_url but this worker has no E2BQ_CALLBACK_SECRET to sign it", job_id)
        return False, "the worker has no E2BQ_CALLBACK_SECRET"
    payload = callbacks.body(record)
    signed = callbacks.headers(secret, job_id, payload, attempt=attempt)
    try:
        answer = ctx.http.post(url, content=payload, headers=signed)
    except httpx.HTTPError as exc:  # refused, reset, timed out, bad TLS: the receiver may come back
        return True, f"{type(exc).__name__}: {exc}"
    if answer.is_success:
        return False, None
    return answer.status_code == 429 or answer.status_code >= 500, f"HTTP {answer.status_code}"
