"""Sending tasks and waiting for their results: the client's only link to the workers.

Every method takes a :class:`~e2bq.protocol.Task` and its arguments, so mypy checks both against
the protocol; a result comes back as the task's result type or an ErrorResult. How long a call
waits is :func:`e2bq.protocol.deadline`'s ``wait``, the same bound the worker works to.

Broker and backend failures are translated here into e2bq errors that say what to check.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Mapping
from typing import TypeVar, cast

import celery.exceptions
import kombu.exceptions
import redis.exceptions
from celery import Celery
from celery.result import AsyncResult

from ..celery_app import make_celery
from ..config import Settings
from ..errors import ExecutionTimeoutError, NodeLostError, QueueError
from ..protocol import Task, deadline
from ..stores.nodes import NodeStore
from ..stores.registry import Registry
from ..types import ErrorResult
from .routing import Route, Router

A = TypeVar("A", bound=Mapping[str, object])
R = TypeVar("R")
_NODE_CHECK = 1.0  # seconds between looks at the node of a call being waited for
_BROKER_ERRORS = (kombu.exceptions.OperationalError, redis.exceptions.ConnectionError, OSError)


class Dispatcher:
    """Sends tasks to the queue of their sandbox's node (``router``) and waits for results."""

    def __init__(
        self, settings: Settings, app: Celery | None = None, *, router: Router | None = None
    ) -> None:
        self.settings = settings
        self.app = app or make_celery(settings)
        if router is None:
            registry = Registry(settings)
            router = Router(settings, registry, NodeStore(settings, registry.redis))
        self.router = router

    def submit(
        self, task: Task[A, R], args: A, *, task_id: str | None = None, route: Route | None = None
    ) -> str:
        """Enqueue a task on ``route`` (by default its sandbox's node's queue, see
        :meth:`Router.route`); return its id (a job's id when it runs as a background job)."""
        return str(self._send(task, args, task_id=task_id, route=route).id)

    def _send(
        self, task: Task[A, R], args: A, *, task_id: str | None = None, route: Route | None = None
    ) -> AsyncResult:
        queue = (route or self.router.route(args)).queue
        try:
            sent: AsyncResult = self.app.send_task(
                task, kwargs=dict(args), task_id=task_id or uuid.uuid4().hex, queue=queue
            )
            return sent
        except _BROKER_ERRORS as exc:
            raise QueueError(
                f"cannot reach the broker at E2BQ_REDIS_URL ({self.settings.redis_location}): {exc}"
            ) from exc

    def call(self, task: Task[A, R], args: A, *, route: Route | None = None) -> R | ErrorResult:
        """Run a task and wait for its result, as long as the protocol's deadline says; a lost
        node ends the wait at once (NodeLostError)."""
        route = route or self.router.route(args)
        # Wait on the result send_task made: it subscribed to the task's result as it sent it, and
        # a second AsyncResult would unsubscribe and subscribe again (two round trips per call).
        sent = self._send(task, args, route=route)
        return self.wait(sent.id, name=task, timeout=self.wait_for(task, args), node=route.node, result=sent)

    def wait_for(self, task: Task[A, R], args: A) -> float:
        """Seconds a caller waits for this call's result (see :func:`e2bq.protocol.deadline`)."""
        wait = deadline(task, args, self.settings).wait
        if wait is None:
            raise ValueError(f"nobody waits for {task} called as {args!r}: submit it instead")
        return wait

    def wait(
        self,
        task_id: str,
        *,
        name: Task[A, R],
        timeout: float,
        node: str | None = None,
        result: AsyncResult | None = None,
    ) -> R | ErrorResult:
        """The result of the task ``task_id`` (a ``name`` task), waiting at most ``timeout`` seconds;
        NodeLostError as soon as ``node`` (the one it was sent to) is seen lost, about every second.
        ``result`` is the task's AsyncResult when the caller has it (send_task's)."""
        result = result or AsyncResult(task_id, app=self.app)
        until = time.monotonic() + timeout
        # Celery calls get()'s on_interval once only: wait in slices, looking at the node between.
        piece = _NODE_CHECK if node is not None else timeout
        try:
            while True:
                remaining = until - time.monotonic()
                try:
                    # JSON from the result backend: the worker returned the task's result type
                    outcome = result.get(timeout=max(0.01, min(remaining, piece)), propagate=True)
                    return cast("R | ErrorResult", outcome)
                except celery.exceptions.TimeoutError:
                    if time.monotonic() >= until:
                        raise
                    self.router.check(node)
        except NodeLostError:
            result.revoke()
            raise
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

    def revoke(self, task_id: str) -> None:
        """Best effort: live workers drop the task if it is still queued."""
        with contextlib.suppress(*_BROKER_ERRORS):
            self.app.control.revoke(task_id)
