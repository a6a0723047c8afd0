"""The outbox: job ends whose callback (``callback_url``) or ``on_done`` task is still to be delivered.

A job's end never waits for its delivery. The job store's end script (``_FINISH``), for a job
that asked for one, adds the job's id to ``e2bq:outbox`` — in the same script as the end, so a
worker that dies right after ending the job loses nothing — scored by when the next attempt is
due, and pushes a wake-up on ``e2bq:outbox:wake``. Every worker runs a drainer
(``workers/outbox.py``) that claims the due entries and sends a ``e2bq.deliver_job_end`` task for
each. Claiming moves an entry's score a lease ahead, so an entry whose delivery task was lost
(its worker died) is claimed again once the lease lapses; the task removes the entry when the
delivery succeeded or was given up, and moves it to its next attempt's time otherwise.
"""

from __future__ import annotations

import time
from typing import Final

import redis

from ..config import Settings
from .connection import connect, text, translates_errors
from .keys import OUTBOX, OUTBOX_WAKE, job_delivery_key

# Lua shared by the job store's end script: queue the job's delivery when its record asks for
# one (``callback_url`` or ``on_done``, JSON-encoded as the hash keeps them).
OUTBOX_LUA: Final = """
local function e2bq_outbox(outbox, wake, job, callback_url, on_done, due)
  if (callback_url and callback_url ~= 'null') or (on_done and on_done ~= 'null') then
    redis.call('ZADD', outbox, due, job)
    redis.call('LPUSH', wake, job)
    redis.call('LTRIM', wake, 0, 99)
  end
end
"""

# KEYS[1] = outbox; ARGV[1] = now, ARGV[2] = lease end, ARGV[3] = at most this many.
# The due entries, each moved to the lease's end so no other drainer claims it meanwhile.
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, job in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], job) end
return due
"""


class Outbox:
    """Due deliveries of job ends, and each delivery's state (attempts, when it began, outcome)."""

    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = client or connect(settings)
        self._claim = self.redis.register_script(_CLAIM)

    @property
    def lease(self) -> float:
        """Seconds a claimed delivery has to finish one attempt before it may be claimed again."""
        return 2 * self.settings.callback_timeout + 30.0

    @translates_errors
    def wait(self, timeout: float) -> None:
        """Block until a job end asks for a delivery, or ``timeout`` seconds (whichever is first)."""
        if self.redis.blpop([OUTBOX_WAKE], timeout=max(0.01, timeout)):
            self.redis.delete(OUTBOX_WAKE)  # one look at the outbox serves every wake-up so far

    @translates_errors
    def claim(self, limit: int = 100) -> list[str]:
        """The ids of the jobs whose delivery is due now, claimed for one lease."""
        now = time.time()
        due = self._claim(keys=[OUTBOX], args=[now, now + self.lease, limit])
        return [text(job_id) for job_id in due]

    @translates_errors
    def next_due(self) -> float | None:
        """When the earliest delivery is due (seconds since the epoch); None when none is queued."""
        first = self.redis.zrange(OUTBOX, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    @translates_errors
    def begin(self, job_id: str) -> dict[str, str] | None:
        """Take the delivery's lock for one attempt (None: another attempt is under way) and return
        its state: ``attempts`` made, ``first_at`` (the first attempt's time), ``on_done_sent``."""
        key = job_delivery_key(job_id)
        if not self.redis.set(f"{key}:lock", "1", nx=True, ex=int(self.lease)):
            return None
        self.redis.hsetnx(key, "first_at", str(time.time()))
        self.redis.expire(key, self.settings.job_ttl)
        return {text(k): text(v) for k, v in self.redis.hgetall(key).items()}

    @translates_errors
    def note(self, job_id: str, fields: dict[str, str | float]) -> None:
        """Record ``fields`` in the delivery's state."""
        self.redis.hset(
            job_delivery_key(job_id), mapping={name: str(value) for name, value in fields.items()}
        )

    @translates_errors
    def again_at(self, job_id: str, when: float, attempts: int) -> None:
        """The attempt failed and may be retried: the next one is due at ``when``."""
        self.note(job_id, {"attempts": attempts})
        self.redis.zadd(OUTBOX, {job_id: when}, xx=True)
        self.redis.delete(f"{job_delivery_key(job_id)}:lock")

    @translates_errors
    def close(self, job_id: str, outcome: str) -> None:
        """The delivery is over (``delivered``, or why it was given up): out of the outbox."""
        self.note(job_id, {"outcome": outcome, "closed_at": time.time()})
        self.redis.zrem(OUTBOX, job_id)
        self.redis.delete(f"{job_delivery_key(job_id)}:lock")

    @translates_errors
    def state(self, job_id: str) -> dict[str, str]:
        """The delivery's state as :meth:`begin` and :meth:`close` recorded it ({} when none)."""
        return {text(k): text(v) for k, v in self.redis.hgetall(job_delivery_key(job_id)).items()}
