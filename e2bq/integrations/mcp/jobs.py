"""Background jobs as MCP resources: ``e2bq://jobs/{job_id}``, and their end as a notification.

A client that subscribes to a job's resource gets one ``notifications/resources/updated`` when
the job ends (done, error or cancelled); reading the resource then gives the job's status dict, as
``get_job_status`` returns it. Clients of the handshake era (protocol 2025-11-25 and before, what
most hosts speak) subscribe with ``resources/subscribe``; clients of 2026-07-28 open a
``subscriptions/listen`` stream naming the URIs, served by the SDK's ``ListenHandler`` over this
watch's event bus.

One task per server follows the job event stream (``e2bq:events``, one blocking XREAD at a time,
whatever the number of subscriptions) and tells the sessions subscribed to each job that ended.
A subscription is registered *before* the job's status is read: an end that lands after the read
is an event the follower has not read yet, so no end is missed between the two. A job whose
worker died ends only when someone looks (the toolkit's status read ends it): the follower looks
at the subscribed jobs every ``LOST_CHECK_EVERY`` seconds, so such a job is reported too.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar
from urllib.parse import quote, unquote

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.session import ServerSession
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ResourceUpdated

from ... import TERMINAL_STATES, E2BQError, E2BToolkit, JobEvents

log = logging.getLogger(__name__)

JOB_URI_TEMPLATE: Final = "e2bq://jobs/{job_id}"
_JOB_URI_PREFIX: Final = "e2bq://jobs/"
ENDING_EVENTS: Final = frozenset({"ended", "cancelled"})
FOLLOW_BLOCK = 2.0  # seconds one read of the stream blocks; bounds how late a shutdown is
LOST_CHECK_EVERY = 5.0  # seconds between looks at subscribed jobs whose worker may have died
RETRY_AFTER = 1.0  # seconds to wait after Redis failed before reading the stream again

T = TypeVar("T")


def job_uri(job_id: str) -> str:
    """The job's resource URI (a job id may be any text: it is percent-encoded)."""
    return _JOB_URI_PREFIX + quote(job_id, safe="")


def job_id_of(uri: str) -> str | None:
    """The job id of an ``e2bq://jobs/{job_id}`` URI; None for any other URI."""
    if not uri.startswith(_JOB_URI_PREFIX) or "/" in uri[len(_JOB_URI_PREFIX) :]:
        return None
    return unquote(uri[len(_JOB_URI_PREFIX) :]) or None


def ended(status: dict[str, Any]) -> bool:
    """Whether a get_job_status dict says the job will not change again."""
    return status.get("status") in TERMINAL_STATES or status.get("status") == "not_found"


class JobWatch:
    """The sessions subscribed to each job, and the task that tells them when it ends."""

    def __init__(self, toolkit: E2BToolkit, events: JobEvents) -> None:
        self.toolkit = toolkit
        self.events = events
        # job id -> connection key -> a session of that connection (any one of them reaches the
        # connection's standalone channel, which carries the notification)
        self._subscribers: dict[str, dict[str, ServerSession]] = {}
        # 2026-07-28 listen streams: every job's end goes to the bus (each stream keeps the URIs
        # it named); the jobs some open stream names, for the look at lost workers
        self.bus = InMemorySubscriptionBus()
        self._listen = ListenHandler(self.bus)
        self._listened: dict[str, int] = {}
        # The follower's blocking reads get a thread of their own: tool calls may hold every
        # thread of anyio's default limiter, and the follower must never wait behind them.
        self._limiter = anyio.CapacityLimiter(1)

    async def status(self, job_id: str) -> dict[str, Any]:
        """The job's status dict, read in a worker thread (the toolkit blocks)."""
        result: dict[str, Any] = dict(await anyio.to_thread.run_sync(self.toolkit.get_job_status, job_id))
        return result

    async def subscribe(self, job_id: str, connection: str, session: ServerSession) -> dict[str, Any]:
        """Register ``connection`` (its key; ``session`` reaches it) for job ``job_id``'s end; the
        job's status as it stands after (``not_found``: nothing was registered)."""
        self._subscribers.setdefault(job_id, {})[connection] = session
        status = await self.status(job_id)
        if status.get("status") == "not_found":
            self.unsubscribe(job_id, connection)
        elif ended(status):
            await self._tell(job_id)
        return status

    def unsubscribe(self, job_id: str, connection: str) -> None:
        sessions = self._subscribers.get(job_id)
        if sessions is not None:
            sessions.pop(connection, None)
            if not sessions:
                del self._subscribers[job_id]

    async def listen(
        self, ctx: ServerRequestContext[Any], params: types.SubscriptionsListenRequestParams
    ) -> types.SubscriptionsListenResult:
        """Serve one ``subscriptions/listen`` stream (the SDK's handler), noting the jobs it names
        while it is open."""
        uris = params.notifications.resource_subscriptions or []
        jobs = [job_id for job_id in map(job_id_of, uris) if job_id is not None]
        for job_id in jobs:
            self._listened[job_id] = self._listened.get(job_id, 0) + 1
        try:
            return await self._listen(ctx, params)
        finally:
            for job_id in jobs:
                left = self._listened.pop(job_id, 0) - 1
                if left > 0:
                    self._listened[job_id] = left

    async def follow(self) -> None:
        """Tell subscribers of every job that ends, until cancelled (runs for the server's life)."""
        cursor: str | None = None
        checked = time.monotonic()
        while True:
            try:
                if cursor is None:
                    cursor = await self._blocking(self.events.last_id)
                batch = await self._blocking(functools.partial(self.events.read, cursor, block=FOLLOW_BLOCK))
            except E2BQError as exc:
                log.warning("reading the job event stream failed (%s); retrying in %g s", exc, RETRY_AFTER)
                await anyio.sleep(RETRY_AFTER)
                continue
            if batch:
                cursor = batch[-1]["id"]
            for job_id in {event["job_id"] for event in batch if event["event"] in ENDING_EVENTS}:
                await self._tell(job_id)
            if (self._subscribers or self._listened) and time.monotonic() - checked >= LOST_CHECK_EVERY:
                checked = time.monotonic()
                await self._look_for_lost()

    async def _look_for_lost(self) -> None:
        for job_id in set(self._subscribers) | set(self._listened):
            if ended(await self.status(job_id)):  # the status read ends a job whose worker died
                await self._tell(job_id)

    async def _tell(self, job_id: str) -> None:
        """Send the job's subscribers its resource's update once; the subscription ends with it
        (an ended job never changes again)."""
        self._listened.pop(job_id, None)  # told: the look at lost workers has no more to find
        await self.bus.publish(ResourceUpdated(uri=job_uri(job_id)))
        for session in self._subscribers.pop(job_id, {}).values():
            try:
                await session.send_resource_updated(job_uri(job_id))
            except Exception as exc:  # a client gone away must not stop the others' notifications
                log.info("could not tell a session that job %s ended: %s", job_id, exc)

    async def _blocking(self, call: Callable[[], T]) -> T:
        # Abandoned on cancel: a shutdown does not wait for the read's block to run out.
        return await anyio.to_thread.run_sync(call, abandon_on_cancel=True, limiter=self._limiter)
