"""The worker's Celery app: e2bq's shared configuration plus the tasks. ``e2bq worker`` runs it.

On start a worker clears any stale shutdown mark under its name and starts its reaper; on SIGTERM
(warm shutdown) it gives running work ``E2BQ_WORKER_GRACE`` seconds (30) to finish, then stops it
and ends those jobs as ``error`` ("worker shut down") — none is left ``running``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

from celery.signals import (
    after_setup_logger,
    task_received,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
    worker_shutting_down,
)
from kombu.entity import Queue

from e2bq.callbacks import DELIVER_JOB_END
from e2bq.celery_app import make_celery
from e2bq.config import Settings
from e2bq.protocol import CANCEL_JOB, CancelJobArgs, is_job
from e2bq.queues import check_node_name, queue_for, worker_queues
from e2bq.stores.jobs import JobStore
from e2bq.stores.nodes import NodeStore
from e2bq.stores.shutdowns import Shutdowns

from .node import start_node_beat
from .outbox import start_drainer
from .runner import close_process_context
from .takeover import send_again
from .watch import start_reaper

settings = Settings.from_env()
app = make_celery(settings)
app.conf.imports = ("workers.tasks",)
app.conf.worker_consumer = "workers.consumer:Consumer"  # reconnects within 0.25 s of the broker's return


def _node() -> str | None:
    """The node this worker serves: ``E2BQ_NODE`` for a local sandbox host; None for E2B's cloud.

    Flower loads this app too, with no provider configured: it gets the shared queues, which its
    broker page lists until it has asked a worker for the queues that worker takes."""
    local = bool(settings.e2b_api_url or settings.e2b_sandbox_url)  # Settings.provider, minus its error
    return check_node_name(settings.node) if local else None


# What it takes unless -Q says otherwise: its node's queues and the shared ones, interactive first.
_queue = cast("Callable[[str], object]", Queue)  # kombu's constructor has no annotations
app.conf.task_queues = [
    _queue(name) for name in worker_queues(settings.queue, _node(), settings.worker_serves)
]


@after_setup_logger.connect
def _quiet_results(**_: Any) -> None:
    """Celery logs each task's return value at INFO: that is user code's output. Keep it out."""
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)


_jobs = JobStore(settings)


@task_received.connect
def _on_received(request: Any = None, **_: Any) -> None:
    """Mark a job taken, so that its loss is noticed even if this worker dies before starting it."""
    if request is not None and is_job(getattr(request, "kwargs", None) or {}):
        _jobs.receive(str(request.id), str(request.hostname))


@worker_ready.connect
def _on_ready(sender: Any = None, **_: Any) -> None:
    hostname = str(getattr(sender, "hostname", ""))
    Shutdowns(settings).clear(hostname)
    start_node_beat(settings)
    start_reaper(settings, stop_work=_stop_work, take_over=_take_over)
    start_drainer(settings, _send_delivery)


def _take_over(job_id: str, number: int) -> None:
    send_again(app, _jobs, settings, job_id, number)


def _send_delivery(job_id: str) -> None:
    """Send the delivery of a job's end to the first queue this worker takes (every worker takes
    one: a worker serving only batch work takes no interactive queue)."""
    queue = worker_queues(settings.queue, _node(), settings.worker_serves)[0]
    app.send_task(DELIVER_JOB_END, kwargs={"job_id": job_id}, queue=queue)


def _stop_work(job_id: str) -> None:
    """Send the cancel_job task for a job whose worker was lost to a worker of the job's node,
    which stops its process (nothing to stop when the node itself is lost)."""
    record = _jobs.get(job_id)
    node = record.get("node") if record is not None else None
    if node and NodeStore(settings, _jobs.redis).lost(node):
        return
    app.send_task(CANCEL_JOB, kwargs=CancelJobArgs(job_id=job_id), queue=queue_for(settings.queue, node))


@worker_shutting_down.connect
def _on_shutdown(sender: Any = None, **_: Any) -> None:
    Shutdowns(settings).announce(str(sender), settings.worker_grace)


@worker_shutdown.connect  # the main process, where threads and solo pools run tasks
@worker_process_shutdown.connect  # a prefork child
def _on_process_exit(**_: Any) -> None:
    close_process_context()
