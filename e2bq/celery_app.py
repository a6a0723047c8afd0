"""The Celery configuration clients and workers share.

Clients build an app from it only to send tasks by name (``e2bq.protocol``) and read results;
workers add the tasks.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from .config import Settings

# Behind Sentinel, a message sent while the master is down is retried until a replica is promoted:
# 60 tries at most 0.5 s apart (~30 s), well past a failover (~2-5 s with a down-after of 1 s).
# Celery's default gives up after 3 tries in ~0.6 s. The result backend's reconnection (its pub/sub
# and every result write) uses the same bound (Celery's default: ~20 s).
FAILOVER_RETRY = {"max_retries": 60, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.5}


def make_celery(settings: Settings) -> Celery:
    url = settings.redis_url if (location := settings.sentinel) is None else location.celery_url()
    app = Celery("e2bq", broker=url, backend=url, set_as_current=False)
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
    if location is not None:
        app.conf.update(_failover_options(location.master_name, app.conf.broker_transport_options))
    return app


def _failover_options(master_name: str, broker_options: dict[str, Any]) -> dict[str, Any]:
    """What makes the broker (kombu's ``sentinel`` transport) and the result backend (Celery's
    ``sentinel`` backend) follow the master ``master_name`` through a failover.

    Both take the master's name from their transport options (neither reads it from the URL). The
    Sentinels are asked with a short timeout, so a dead one is skipped quickly. The publish and
    backend retry policies outlast a failover; without them a call made during one fails at once.
    """
    sentinel_kwargs = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}
    return {
        "broker_transport_options": {
            **broker_options,
            "master_name": master_name,
            "sentinel_kwargs": sentinel_kwargs,
            "socket_keepalive": True,
        },
        "result_backend_transport_options": {
            "master_name": master_name,
            "sentinel_kwargs": sentinel_kwargs,
            "retry_policy": FAILOVER_RETRY,
        },
        "task_publish_retry_policy": FAILOVER_RETRY,
        "redis_socket_keepalive": True,
    }
