"""Waiting for a background job to end, woken by the job event stream rather than by polling.

The wait takes the stream's last entry id *before* it reads the job's status, then blocks on the
stream from that id: an end that lands between the read and the block is an entry after the id,
so the wait sees it at once — no wake-up is lost. Between events it ends the job itself if its
worker died (``JobStore.end_if_lost``) every ``LOST_CHECK_EVERY`` seconds, so a wait never
outlives a dead worker by more than the heartbeat plus that, with no reaper running.
"""

from __future__ import annotations

import time

from ..stores.events import JobEvents
from ..stores.jobs import JobStore
from ..types import TERMINAL_STATES, JobRecord

LOST_CHECK_EVERY = 2.0  # seconds between looks for a lost worker while waiting


def wait_for_end(
    jobs: JobStore, events: JobEvents, job_id: str, timeout: float | None
) -> tuple[JobRecord | None, bool]:
    """The job's record once it ended, or when ``timeout`` seconds passed (None: no bound), and
    whether the wait timed out; (None, False) when there is no such job."""
    deadline = None if timeout is None else time.monotonic() + timeout
    cursor = events.last_id()
    checked = -LOST_CHECK_EVERY
    while True:
        if time.monotonic() - checked >= LOST_CHECK_EVERY:  # not after every event: it costs reads
            checked = time.monotonic()
            jobs.end_if_lost(job_id)
        record = jobs.get(job_id)
        if record is None or record["status"] in TERMINAL_STATES:
            return record, False
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return record, True
        look_until = now + LOST_CHECK_EVERY if deadline is None else min(deadline, now + LOST_CHECK_EVERY)
        cursor = next_event_of(events, job_id, cursor, look_until)


def next_event_of(events: JobEvents, job_id: str, cursor: str, until: float) -> str:
    """Block until the stream has an event of ``job_id`` after ``cursor``, or ``until`` (monotonic);
    the id of the last entry read."""
    while (left := until - time.monotonic()) > 0:
        batch = events.read(cursor, block=left)
        if not batch:
            break
        cursor = batch[-1]["id"]
        if any(event["job_id"] == job_id for event in batch):
            break
    return cursor
