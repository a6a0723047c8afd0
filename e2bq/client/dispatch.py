"""Sending tasks and waiting for their results: the client's only link to the workers.

Every method takes a :class:`~e2bq.protocol.Task` and its arguments, so mypy checks both against
the protocol; a result comes back as the task's result type or an ErrorResult. How long a call
waits is :func:`e2bq.protocol.deadline`'s ``wait``, the same bound the worker works to.

Broker and backend failures are translated here into e2bq errors that say what to check.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping, Sequence
from typing import TypeVar, cast

import celery.exceptions
import kombu.exceptions
import redis.exceptions
from celery import Celery, group
from celery.result import AsyncResult, GroupResult

from ..celery_app import make_celery
from ..config import Settings
from ..errors import ExecutionTimeoutError, QueueError
from ..protocol import Task, deadline
from ..types import ErrorResult

A = TypeVar("A", bound=Mapping[str, object])
R = TypeVar("R")
_BROKER_ERRORS = (kombu.exceptions.OperationalError, redis.exceptions.ConnectionError, OSError)


class Dispatcher:
    def __init__(self, settings: Settings, app: Celery | None = None) -> None:
        self.settings = settings
        self.app = app or make_celery(settings)

    def submit(self, task: Task[A, R], args: A, *, task_id: str | None = None) -> str:
        """Enqueue a task; return its id (a job's id when it runs as a background job)."""
        task_id = task_id or uuid.uuid4().hex
        try:
            self.app.send_task(task, kwargs=dict(args), task_id=task_id, queue=self.settings.queue)
        except _BROKER_ERRORS as exc:
            raise QueueError(
                f"cannot reach the broker at E2BQ_REDIS_URL ({self.settings.redis_location}): {exc}"
            ) from exc
        return task_id

    def call(self, task: Task[A, R], args: A) -> R | ErrorResult:
        """Run a task and wait for its result, as long as the protocol's deadline says."""
        return self.wait(self.submit(task, args), name=task, timeout=self.wait_for(task, args))

    def wait_for(self, task: Task[A, R], args: A) -> float:
        """Seconds a caller waits for this call's result (see :func:`e2bq.protocol.deadline`)."""
        wait = deadline(task, args, self.settings).wait
        if wait is None:
            raise ValueError(f"nobody waits for {task} called as {args!r}: submit it instead")
        return wait

    def wait(self, task_id: str, *, name: Task[A, R], timeout: float) -> R | ErrorResult:
        """The result of the task ``task_id`` (a ``name`` task), waiting at most ``timeout`` seconds."""
        result = AsyncResult(task_id, app=self.app)
        try:
            # JSON from the result backend: the worker returned the task's result type
            return cast("R | ErrorResult", result.get(timeout=timeout, propagate=True))
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

    def fan_out(self, task: Task[A, R], calls: Sequence[A]) -> list[str]:
        """Send one task per arguments as a Celery group; return the task ids in order."""
        try:
            queue = self.settings.queue
            signatures = [self.app.signature(task, kwargs=dict(args), queue=queue) for args in calls]
            sent = cast(GroupResult, group(signatures, app=self.app).apply_async())
        except _BROKER_ERRORS as exc:
            raise QueueError(f"cannot reach the broker: {exc}") from exc
        return [child.id for child in sent.results or []]

    def revoke(self, task_id: str) -> None:
        """Best effort: live workers drop the task if it is still queued."""
        with contextlib.suppress(*_BROKER_ERRORS):
            self.app.control.revoke(task_id)
