"""A batch map's items in Redis: which are still to run, which lane runs which, their results.

A map is a job (``e2bq.stores.jobs``, kind ``map``) plus the keys here. Its items' code sits in a
list in input order; a *todo* list holds the indices no lane has taken yet. A lane takes the next
index and leases it under its lane task's name (:meth:`MapStore.take`), runs it, and records its
result (:meth:`MapStore.record`); each lane task beats (:meth:`MapStore.beat`) while it runs.

Every step that more than one lane may race on is one Lua script:

- taking an item also stops a lane once the job ended or was cancelled, and, when nothing is left
  to take, takes over an item leased by a lane task whose heartbeat lapsed (its worker died), so
  surviving lanes finish the work of dead ones;
- recording a result sets it once (a second run of the same item changes nothing), counts it as
  done or failed, and refuses once the job was cancelled or ended: after ``kill_job`` returns, no
  item finishes;
- the recording that completes the count says so, and that lane ends the job.

Reading (:meth:`progress`, :meth:`results`) never changes anything.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

import redis

from ..config import Settings
from ..types import MapItemResult, MapProgress
from .connection import connect, text, translates_errors
from .keys import job_cancel_key, job_key, map_alive_prefix, map_key

_CHUNK = 1000  # items written per command when a map is created

# KEYS: todo, leases, items, attempts, job hash, job cancel flag, map hash. ARGV: lane task, heartbeat prefix.
# Returns {'item', index, code, attempts}, {'wait'} (others hold the last items), {'drained'}, {'stop'}.
_TAKE = """
if redis.call('EXISTS', KEYS[6]) == 1 or redis.call('HGET', KEYS[5], 'status') ~= '"running"' then
  return {'stop'}
end
local index = redis.call('LPOP', KEYS[1])
if not index then
  local leases = redis.call('HGETALL', KEYS[2])
  if #leases == 0 then return {'drained'} end
  for i = 1, #leases, 2 do
    if redis.call('EXISTS', ARGV[2] .. leases[i + 1] .. ':alive') == 0 then
      index = leases[i]
      redis.call('HINCRBY', KEYS[4], index, 1)
      break
    end
  end
  if not index then return {'wait'} end
end
redis.call('HSET', KEYS[2], index, ARGV[1])
local expires_at = tonumber(redis.call('HGET', KEYS[7], 'expires_at'))
redis.call('EXPIREAT', KEYS[2], expires_at)
if redis.call('EXISTS', KEYS[4]) == 1 then redis.call('EXPIREAT', KEYS[4], expires_at) end
local code = redis.call('LINDEX', KEYS[3], tonumber(index))
return {'item', index, code, tonumber(redis.call('HGET', KEYS[4], index) or '0')}
"""

# KEYS: results, leases, map hash, job hash, job cancel flag. ARGV: index, result JSON, 'done' | 'failed'.
# Returns -1 (the job ended: not recorded), 0 (recorded before), 1 (recorded), 2 (recorded, the last).
_RECORD = """
if redis.call('EXISTS', KEYS[5]) == 1 or redis.call('HGET', KEYS[4], 'status') ~= '"running"' then
  return -1
end
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('EXPIREAT', KEYS[1], tonumber(redis.call('HGET', KEYS[3], 'expires_at')))
redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
local counts = redis.call('HMGET', KEYS[3], 'done', 'failed', 'total')
if tonumber(counts[1]) + tonumber(counts[2]) >= tonumber(counts[3]) then return 2 end
return 1
"""

# KEYS: todo, leases. ARGV: index, lane task. Puts the item back first in line if the task still holds it.
_RELEASE = """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('LPUSH', KEYS[1], ARGV[1])
return 1
"""

Recorded = Literal["ended", "again", "recorded", "last"]
_RECORDED: dict[int, Recorded] = {-1: "ended", 0: "again", 1: "recorded", 2: "last"}


@dataclass(frozen=True)
class Taken:
    """What :meth:`MapStore.take` gave a lane: an item (``index``, ``code``, and ``attempts``: how
    often its sandbox or lane was lost under it), or ``wait`` / ``drained`` / ``stop``."""

    kind: Literal["item", "wait", "drained", "stop"]
    index: int = -1
    code: str = ""
    attempts: int = 0


class MapStore:
    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = client or connect(settings)
        self._take = self.redis.register_script(_TAKE)
        self._record = self.redis.register_script(_RECORD)
        self._release = self.redis.register_script(_RELEASE)

    # -- the client's side ----------------------------------------------------------------------

    @translates_errors
    def create(self, job_id: str, codes: Sequence[str], *, lanes: int) -> None:
        """Record the map's items, all to do, to be run by ``lanes`` lanes; kept ``job_ttl`` seconds."""
        expires_at = int(time.time()) + self.settings.job_ttl
        pipe = self.redis.pipeline()
        pipe.hset(
            map_key(job_id),
            mapping={"total": len(codes), "done": 0, "failed": 0, "lanes": lanes, "expires_at": expires_at},
        )
        for start in range(0, len(codes), _CHUNK):
            pipe.rpush(map_key(job_id, "items"), *codes[start : start + _CHUNK])
            pipe.rpush(map_key(job_id, "todo"), *range(start, min(start + _CHUNK, len(codes))))
        for part in ("", "items", "todo"):
            pipe.expireat(map_key(job_id, part), expires_at)
        pipe.execute()

    @translates_errors
    def progress(self, job_id: str) -> MapProgress | None:
        """The map's counts; None when it has no record."""
        total, done, failed, lanes = self.redis.hmget(map_key(job_id), ["total", "done", "failed", "lanes"])
        if total is None:
            return None
        counts = [int(value or 0) for value in (total, done, failed, lanes)]
        return {"total": counts[0], "done": counts[1], "failed": counts[2], "lanes": counts[3]}

    @translates_errors
    def results(self, job_id: str, start: int, stop: int) -> list[MapItemResult | None]:
        """The results of items ``start`` to ``stop - 1`` (None for an item not finished)."""
        if stop <= start:
            return []
        raw = self.redis.hmget(map_key(job_id, "results"), [str(i) for i in range(start, stop)])
        return [None if value is None else cast(MapItemResult, json.loads(value)) for value in raw]

    # -- the lanes' side ------------------------------------------------------------------------

    @translates_errors
    def claim(self, job_id: str, group: str) -> bool:
        """Claim lane task ``group`` for this delivery and start its heartbeat; False when another
        delivery of the same message claimed it (Redis handed the message out twice)."""
        if not self.redis.hsetnx(map_key(job_id), f"group:{group}", "claimed"):
            return False
        self.beat(job_id, group)
        return True

    @translates_errors
    def beat(self, job_id: str, group: str) -> None:
        """Lane task ``group`` lives: its leases are safe from takeover for ``heartbeat_ttl`` seconds."""
        key = f"{map_alive_prefix(job_id)}{group}:alive"
        self.redis.set(key, "1", ex=self.settings.heartbeat_ttl)

    @translates_errors
    def take(self, job_id: str, group: str) -> Taken:
        """The next item for a lane of task ``group`` (see the module's docstring)."""
        keys = [
            map_key(job_id, "todo"), map_key(job_id, "leases"), map_key(job_id, "items"),
            map_key(job_id, "attempts"), job_key(job_id), job_cancel_key(job_id), map_key(job_id),
        ]
        reply = self._take(keys=keys, args=[group, map_alive_prefix(job_id)])
        kind = text(reply[0])
        if kind != "item":
            return Taken(cast("Literal['wait', 'drained', 'stop']", kind))
        return Taken("item", index=int(reply[1]), code=text(reply[2] or ""), attempts=int(reply[3]))

    @translates_errors
    def record(self, job_id: str, index: int, result: MapItemResult) -> Recorded:
        """Keep an item's result unless the job ended; ``last`` when it completes the map."""
        keys = [
            map_key(job_id, "results"), map_key(job_id, "leases"), map_key(job_id),
            job_key(job_id), job_cancel_key(job_id),
        ]
        counted = "done" if result["status"] == "success" else "failed"
        return _RECORDED[int(self._record(keys=keys, args=[index, json.dumps(result), counted]))]

    @translates_errors
    def lost(self, job_id: str, index: int) -> int:
        """The item's sandbox died under it: how often that has now happened to it."""
        pipe = self.redis.pipeline()
        pipe.hincrby(map_key(job_id, "attempts"), str(index), 1)
        pipe.expire(map_key(job_id, "attempts"), self.settings.job_ttl)
        attempts, _ = pipe.execute()
        return int(attempts)

    @translates_errors
    def release(self, job_id: str, index: int, group: str) -> None:
        """Give an item lane task ``group`` holds back, first in line for the next lane."""
        self._release(keys=[map_key(job_id, "todo"), map_key(job_id, "leases")], args=[index, group])

    @translates_errors
    def note(self, job_id: str, why: str) -> None:
        """Say why a lane stopped early (the job's message quotes it if no lane is left)."""
        self.redis.hset(map_key(job_id), "stopped", why)

    @translates_errors
    def why_stopped(self, job_id: str) -> str | None:
        reply = self.redis.hget(map_key(job_id), "stopped")
        return None if reply is None else text(reply)

    @translates_errors
    def lane_stopped(self, job_id: str) -> int:
        """A lane stopped: how many are left."""
        return int(self.redis.hincrby(map_key(job_id), "lanes", -1))

    @translates_errors
    def clear_work(self, job_id: str) -> None:
        """Drop what only running lanes need (the job ended); the counts and results stay."""
        self.redis.delete(*(map_key(job_id, part) for part in ("items", "todo", "leases", "attempts")))
