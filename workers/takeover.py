"""Sending a job's task again so that another worker takes the job over (see ``workers.jobwork``).

A job is handed over in the job store first (``JobStore.reap`` for a lost worker's job,
``JobStore.give_up`` for a stopping worker's own), then its task is sent again here: to its node's
batch queue, with the arguments its client sent (kept with the job) and the takeover's number.
Its task id stays the job's id, so kill_job's revoke reaches it too.
"""

from __future__ import annotations

from celery import Celery

from e2bq.config import Settings
from e2bq.protocol import RUN_CODE, RUN_COMMAND
from e2bq.queues import queue_for
from e2bq.stores.jobs import LOST, JobStore

_TASKS = {"code": RUN_CODE, "command": RUN_COMMAND}


def send_again(app: Celery, jobs: JobStore, settings: Settings, job_id: str, number: int) -> None:
    """Send job ``job_id``'s task again as takeover ``number``; end the job if it cannot be."""
    record, args = jobs.get(job_id), jobs.args(job_id)
    if record is None or args is None or record["kind"] not in _TASKS:  # nothing to send: it ends
        jobs.finish(job_id, "error", None, f"{LOST}; its arguments were not kept to take it over")
        return
    app.send_task(
        _TASKS[record["kind"]],
        kwargs={**args, "takeover": number},
        task_id=job_id,
        queue=queue_for(settings.queue, record.get("node"), batch=True),
    )
