"""Sandbox creation shaped across all workers, in Redis: a rate per second and a cap on live sandboxes.

E2B's cloud refuses creates past its plan's limits (Hobby: 1 per second, 20 live) with 429. Rather
than fail, a create waits here for a token and a free slot: one Lua script takes both atomically,
so any number of workers on any number of hosts share the same budget. A slot is held by a
reservation while the sandbox is being made, then by the sandbox until it is killed or expires.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import redis

from ..config import Settings
from ..errors import CapacityError
from .connection import translated, translates_errors
from .keys import shape_bucket_key, shape_live_key

# KEYS: bucket hash, live zset. ARGV: now, rate, burst, cap, reservation, reservation expiry.
# Returns 0 when the create may go ahead (reservation added), else seconds to wait.
_TAKE = """
local now, rate, burst, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= cap then return '0.25' end
end
if rate > 0 then
  local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or burst)
  local ts = tonumber(redis.call('HGET', KEYS[1], 'ts') or now)
  tokens = math.min(burst, tokens + (now - ts) * rate)
  if tokens < 1 then
    redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
    return tostring((1 - tokens) / rate)
  end
  redis.call('HSET', KEYS[1], 'tokens', tokens - 1, 'ts', now)
  redis.call('EXPIRE', KEYS[1], 3600)
end
if cap > 0 then redis.call('ZADD', KEYS[2], ARGV[6], ARGV[5]) end
return '0'
"""


class CreationShaper:
    """The budget of ``settings.provider``: ``settings.creation_budget`` (rate, cap)."""

    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        self.settings = settings
        self.redis = client
        self.provider = settings.provider
        self.rate, self.cap = settings.creation_budget
        self._take = client.register_script(_TAKE)

    @property
    def active(self) -> bool:
        return self.rate > 0 or self.cap > 0

    async def acquire(self, max_wait: float | None = None) -> str:
        """Wait for a token and a slot (at most ``max_wait`` seconds, by default
        ``settings.create_wait``); return the reservation; CapacityError when none came in time.

        It waits on the event loop, not in a thread: creates waiting for their turn must not hold
        the threads other work needs (file transfers run their Redis calls in the loop's executor).
        """
        reservation = f"pending:{uuid.uuid4().hex}"
        max_wait = self.settings.create_wait if max_wait is None else max_wait
        deadline = time.monotonic() + max_wait
        while True:
            now = time.time()
            with translated(self.settings):
                wait = float(self._take(
                    keys=[shape_bucket_key(self.provider), shape_live_key(self.provider)],
                    args=[now, self.rate, max(1.0, self.rate), self.cap, reservation, now + 300],
                ))
            if wait == 0:
                return reservation
            if time.monotonic() + wait > deadline:
                raise CapacityError(
                    f"no sandbox could be created within {max_wait:g} s: {self.cap or 'no'} live-sandbox "
                    f"cap and {self.rate or 'no'} creates/s rate limit for {self.provider}; kill sandboxes "
                    "you no longer need, or raise E2BQ_MAX_LIVE_SANDBOXES / E2BQ_CREATE_RATE"
                )
            await asyncio.sleep(min(wait, 0.5))

    @translates_errors
    def settle(self, reservation: str, sandbox_id: str | None, expires_at: float) -> None:
        """Swap the reservation for the sandbox made (or free it when the create failed)."""
        pipe = self.redis.pipeline()
        pipe.zrem(shape_live_key(self.provider), reservation)
        if sandbox_id is not None:
            pipe.zadd(shape_live_key(self.provider), {sandbox_id: expires_at})
        pipe.execute()
