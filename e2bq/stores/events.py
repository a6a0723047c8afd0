"""The job event stream: every job's transitions, in one Redis stream (``e2bq:events``).

The job store's scripts append an entry as they move a job — ``queued`` (created), ``started``,
``ended`` (``done`` or ``error``) and ``cancelled`` (kill_job) — in the same script as the
transition, so the stream never misses one nor shows one that did not happen. The stream is
trimmed to about ``E2BQ_EVENTS_MAX`` entries (``XADD MAXLEN ~``).

:class:`JobEvents` reads it: from an entry id on, blocking for at most a given time, so a reader
that keeps the id of the last entry it saw misses nothing that came after (``wait_job`` relies on
it: it takes the stream's last id *before* it reads the job's status).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final, cast

import redis

from ..config import Settings
from ..types import JobEvent, JobEventName
from .connection import connect, text, translates_errors
from .keys import EVENTS

# Lua shared by the job store's scripts. Field values come JSON-encoded (as the job hash keeps
# them); the stream holds them plain, '' for none. A field table's ``at`` is the transition's
# timestamp, which the caller passes, so emitting costs the XADD alone.
EMIT_LUA: Final = """
local function e2bq_plain(value)
  if value == nil or value == false or value == 'null' then return '' end
  if string.sub(value, 1, 1) == '"' then return cjson.decode(value) end
  return value
end
local function e2bq_pairs(first)
  local fields = {}
  for i = first, #ARGV, 2 do fields[ARGV[i]] = ARGV[i + 1] end
  return fields
end
local function e2bq_emit(stream, maxlen, job, event, f)
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'job_id', job, 'event', event,
    'status', e2bq_plain(f.status), 'kind', e2bq_plain(f.kind), 'sandbox_id', e2bq_plain(f.sandbox_id),
    'node', e2bq_plain(f.node), 'worker', e2bq_plain(f.worker), 'at', e2bq_plain(f.at))
end
"""

START: Final = "0-0"  # an id before every entry: read from the start of the stream
_BATCH = 500  # entries one XREAD returns at most


class JobEvents:
    """Reads the job event stream. Every method raises e2bq errors, never redis-py's."""

    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = client or connect(settings)

    @translates_errors
    def last_id(self) -> str:
        """The id of the stream's newest entry (``0-0`` when it is empty): follow from it to see
        only what happens from now on."""
        newest = _entries(self.redis.xrevrange(EVENTS, count=1))
        return newest[0]["id"] if newest else START

    @translates_errors
    def read(self, after: str, *, block: float | None = None, count: int = _BATCH) -> list[JobEvent]:
        """The entries after id ``after``, oldest first; with ``block`` (seconds), waits up to that
        long for one when there is none yet (then returns [])."""
        wait = None if block is None else max(1, int(block * 1000))
        reply: Any = self.redis.xread({EVENTS: after}, count=count, block=wait)
        return _entries(reply[0][1]) if reply else []

    def follow(
        self, *, after: str | None = None, job_id: str | None = None, block: float = 1.0
    ) -> Iterator[JobEvent | None]:
        """Every event after id ``after`` (None: from now on), as it comes, forever; only job
        ``job_id``'s when given. Yields None after each ``block`` seconds with no event, so the
        caller can stop or look elsewhere between events."""
        cursor = self.last_id() if after is None else after
        while True:
            events = self.read(cursor, block=block)
            if not events:
                yield None
                continue
            cursor = events[-1]["id"]
            for event in events:
                if job_id is None or event["job_id"] == job_id:
                    yield event

    @translates_errors
    def history(self, job_id: str) -> list[JobEvent]:
        """Job ``job_id``'s events still in the stream, oldest first (reads the whole stream:
        for tools and tests, not for hot paths)."""
        return [event for event in _entries(self.redis.xrange(EVENTS)) if event["job_id"] == job_id]


def _entries(reply: Any) -> list[JobEvent]:
    """Stream entries as redis-py returns them (id, fields), as events."""
    return [_event(text(entry_id), fields) for entry_id, fields in reply]


def _event(entry_id: str, fields: dict[str, str]) -> JobEvent:
    try:
        at = float(fields.get("at") or 0.0)
    except ValueError:
        at = 0.0
    return {
        "id": entry_id,
        "job_id": fields.get("job_id", ""),
        "event": cast(JobEventName, fields.get("event", "")),
        "status": fields.get("status", ""),
        "kind": fields.get("kind", ""),
        "sandbox_id": fields.get("sandbox_id", ""),
        "node": fields.get("node", ""),
        "worker": fields.get("worker", ""),
        "at": at,
    }


def event_line(event: JobEvent) -> str:
    """One event as one line of text: id, time, job, event, status, then what else is known."""
    known = " ".join(
        f"{name}={value}"
        for name, value in (
            ("kind", event["kind"]),
            ("sandbox_id", event["sandbox_id"]),
            ("node", event["node"]),
            ("worker", event["worker"]),
        )
        if value
    )
    head = f"{event['id']} {event['at']:.3f} {event['job_id']} {event['event']} {event['status']}"
    return f"{head} {known}".rstrip()
