"""The Celery configuration clients and workers share.

Clients build an app from it only to send tasks by name (``e2bq.protocol``) and read results;
workers add the tasks.
"""

from __future__ import annotations

from celery import Celery

from .config import Settings


def make_celery(settings: Settings) -> Celery:
    app = Celery("e2bq", broker=settings.redis_url, backend=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=settings.queue,
        # Task events feed Flower (sent, received, started, succeeded). The result backend holds
        # only results: a job's state lives in e2bq's job store, so neither a STARTED state nor
        # the task's arguments are written there (each would cost every task a Redis round trip).
        task_send_sent_event=True,
        worker_send_task_events=True,
        task_track_started=False,
        result_extended=False,
        # Acknowledge as a task starts, not when it ends: a sandbox job is not safe to run twice (it
        # has effects inside the sandbox); a job whose worker died is ended in the job store instead.
        task_acks_late=False,
        worker_prefetch_multiplier=1,
        # Take a message only when a slot is free: a message reserved behind a busy slot is not yet
        # acknowledged, so past the visibility timeout Redis hands it to another worker (a second
        # run), and meanwhile it waits while other workers may be idle.
        worker_disable_prefetch=True,
        result_expires=settings.job_ttl,
        broker_connection_retry_on_startup=True,
        # Running tasks are acknowledged, so a job longer than this is never redelivered; only a
        # message taken by a worker that died before starting it comes back after this long (and
        # the job store's atomic claim keeps any second delivery from running it again).
        # A worker looks at its queues in the order it lists them (e2bq.queues: interactive first),
        # so a synchronous call never waits behind a backlog of background jobs.
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            "queue_order_strategy": "priority",
        },
        worker_cancel_long_running_tasks_on_connection_loss=True,
    )
    return app
