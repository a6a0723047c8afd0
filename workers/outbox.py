"""The outbox drainer: a thread in every worker that turns due job-end deliveries into tasks.

It claims the outbox's due entries (``e2bq.stores.outbox``) and sends an ``e2bq.deliver_job_end``
task for each, to a queue this worker takes. It wakes when a job's end pushes a wake-up, and at
least every second for retries that come due; an entry whose task was lost is claimed again once
its lease lapses, so a delivery survives the death of the worker that ended the job or ran it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from e2bq.config import Settings
from e2bq.stores.outbox import Outbox

log = logging.getLogger("e2bq.worker")
_LOOK_EVERY = 1.0  # seconds between looks at the outbox with no wake-up


def start_drainer(settings: Settings, send: Callable[[str], object]) -> threading.Thread:
    """Start the thread; ``send(job_id)`` sends the delivery task of a claimed job end."""

    def drain_forever() -> None:
        outbox = Outbox(settings)
        while True:
            try:
                for job_id in outbox.claim():
                    send(job_id)
                due = outbox.next_due()
                wait = _LOOK_EVERY if due is None else min(_LOOK_EVERY, due - time.time())
                outbox.wait(max(0.05, wait))
            except Exception as exc:  # this thread must outlive any outage; a lost claim comes back
                log.warning("outbox drainer cannot reach Redis or the broker: %s", exc)
                time.sleep(_LOOK_EVERY)

    thread = threading.Thread(target=drain_forever, name="e2bq-outbox", daemon=True)
    thread.start()
    return thread
