"""Sending tasks and waiting for their results: the client's only link to the workers.

Broker and backend failures are translated here into e2bq errors that say what to check.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable
from typing import Any, cast

import celery.exceptions
import kombu.exceptions
import redis.exceptions
from celery import Celery, group
from celery.result import AsyncResult, GroupResult

from ..celery_app import make_celery
from ..config import Settings
from ..errors import ExecutionTimeoutError, QueueError
from ..types import ToolResult

QUEUE_MARGIN = 30.0  # seconds a synchronous call waits beyond its work's own time bound
_BROKER_ERRORS = (kombu.exceptions.OperationalError, redis.exceptions.ConnectionError, OSError)


class Dispatcher:
    def __init__(self, settings: Settings, app: Celery | None = None) -> None:
        self.settings = settings
        self.app = app or make_celery(settings)

    def submit(self, name: str, kwargs: dict[str, Any], *, task_id: str | None = None) -> str:
        """Enqueue a task; return its id (a job's id when it runs as a background job)."""
        task_id = task_id or uuid.uuid4().hex
        try:
            self.app.send_task(name, kwargs=kwargs, task_id=task_id, queue=self.settings.queue)
        except _BROKER_ERRORS as exc:
            raise QueueError(
                f"cannot reach the broker at E2BQ_REDIS_URL ({self.settings.redis_location}): {exc}"
            ) from exc
        return task_id

    def call(self, name: str, kwargs: dict[str, Any], *, timeout: float) -> ToolResult:
        """Run a task and wait for its result, at most ``timeout`` seconds."""
        task_id = self.submit(name, kwargs)
        return self.wait(task_id, name=name, timeout=timeout)

    def wait(self, task_id: str, *, name: str, timeout: float) -> ToolResult:
        result = AsyncResult(task_id, app=self.app)
        try:
            return cast(ToolResult, result.get(timeout=timeout, propagate=True))
        except celery.exceptions.TimeoutError as exc:
            result.revoke()
            raise ExecutionTimeoutError(
                f"{name} did not finish within {timeout:g} s: check that an `e2bq worker` is running "
                "on this queue, or give the call a longer timeout"
            ) from exc
        except _BROKER_ERRORS as exc:
            raise QueueError(f"lost the result backend while waiting for {name}: {exc}") from exc
        except Exception as exc:  # the task itself raised: a worker bug, logged there
            raise QueueError(f"{name} failed in the worker: {type(exc).__name__}: {exc}") from exc
        finally:
            result.forget()

    def fan_out(self, name: str, calls: Iterable[dict[str, Any]]) -> list[str]:
        """Send one task per kwargs as a Celery group; return the task ids in order."""
        try:
            signatures = [self.app.signature(name, kwargs=kw, queue=self.settings.queue) for kw in calls]
            sent = cast(GroupResult, group(signatures, app=self.app).apply_async())
        except _BROKER_ERRORS as exc:
            raise QueueError(f"cannot reach the broker: {exc}") from exc
        return [child.id for child in sent.results or []]

    def revoke(self, task_id: str) -> None:
        """Best effort: live workers drop the task if it is still queued."""
        with contextlib.suppress(*_BROKER_ERRORS):
            self.app.control.revoke(task_id)
