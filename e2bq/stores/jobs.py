"""The job store: every background job's record in Redis, readable by any process.

Transitions are atomic (a Lua script): once a job is ``done``, ``error`` or ``cancelled`` nothing
moves it again, so a worker finishing a job that was just cancelled cannot revive it.

A taken job has a heartbeat: its worker renews ``e2bq:job:<id>:alive`` every few seconds. When the
worker dies (SIGKILL, out of memory, host gone) the heartbeat lapses, or its sandbox's node is lost
(``e2bq.stores.nodes``); :meth:`JobStore.end_if_lost` then ends the job as ``error`` ("worker lost",
or the lost node named) — every worker's reaper calls it for the jobs it
watches, and the toolkit before it reports a job's status — so no job is left ``running``. A
worker's reaper then stops what the job left running in its sandbox, whoever ended it. Such a job is
not run again: sandbox work has effects (files, processes) that make a blind re-run unsafe; the
caller sees the error and decides.

Reading a job (:meth:`JobStore.get`) never changes it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, Literal, cast

import redis

from ..config import Settings
from ..errors import InvalidInputError
from ..types import TERMINAL_STATES, JobKind, JobRecord, JobRecordStatus
from .connection import connect, replicated, text, translates_errors
from .keys import (
    ORPHANED_JOBS,
    STARTED_JOBS,
    job_alive_key,
    job_cancel_key,
    job_key,
    job_output_key,
)
from .nodes import NodeStore, lost_message

LOST = "worker lost: the worker running this job stopped (killed, out of memory or its host went away)"
LANES_LOST = (
    "lanes lost: every worker running the map's lanes stopped (killed, out of memory or their host went "
    "away); get_job_results has the items that finished"
)
LOST_BEFORE_START = (
    "worker lost before the job started: the worker that took it stopped; nothing ran, submit it again"
)

# KEYS[1] = job hash; ARGV[1] = mode; ARGV[2..] = field, json value, ...
# Modes: "always" writes; "guarded" writes unless the job ended.
_TRANSITION = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
if ARGV[1] ~= 'always' and (status == '"done"' or status == '"error"' or status == '"cancelled"') then
  return -1
end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
"""

# A new job's record, in one round trip: KEYS[1] = job hash; ARGV[1] = ttl; ARGV[2..] = field, value.
# Returns 0, writing nothing, when the id is taken.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""

# A worker took the job's message (receive) or starts it (start), in one round trip.
# KEYS: job hash, cancel flag, alive key, started set; ARGV[1] = job id, ARGV[2] = worker,
# ARGV[3] = heartbeat ttl, ARGV[4] = 'receive' or 'start', ARGV[5..] = the claim's field, value pairs.
# Receive beats and watches an existing job (1; 0: no job). Start leaves a cancelled job alone
# (-2); else it beats and watches it whatever the claim's outcome (the lanes of a map all start
# its job), then claims it: 1 when this call moved it from queued to started, else 0 or -1.
_TAKE = """
if ARGV[4] == 'receive' then
  if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
elseif redis.call('EXISTS', KEYS[2]) == 1 then
  return -2
end
redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[3])
redis.call('SADD', KEYS[4], ARGV[1])
if ARGV[4] == 'receive' then return 1 end
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
if status == '"done"' or status == '"error"' or status == '"cancelled"' then return -1 end
if redis.call('HGET', KEYS[1], 'state') ~= '"queued"' then return -1 end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
return 1
"""

# The end transition and its bookkeeping, in one round trip: KEYS: job hash, started set, alive key;
# ARGV[1] = job id, ARGV[2..] = field, json value, ... Ends the job unless it already ended (1 when
# this call ended it); the job stops being watched either way.
_FINISH = """
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
if status == '"done"' or status == '"error"' or status == '"cancelled"' then return -1 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
"""


def _encode(fields: dict[str, Any]) -> list[str]:
    flat: list[str] = []
    for name, value in fields.items():
        flat += [name, json.dumps(value)]
    return flat


class JobStore:
    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = client or connect(settings)
        self._transition = self.redis.register_script(_TRANSITION)
        self._create = self.redis.register_script(_CREATE)
        self._take = self.redis.register_script(_TAKE)
        self._finish = self.redis.register_script(_FINISH)
        self.nodes = NodeStore(settings, self.redis)

    @translates_errors
    def create(
        self, job_id: str, kind: JobKind, sandbox_id: str, namespace: str, node: str | None = None
    ) -> JobRecord:
        """Record a new queued job (for a sandbox on ``node``); a job id can be used once."""
        record: JobRecord = {
            "job_id": job_id,
            "status": "running",
            "state": "queued",
            "kind": kind,
            "sandbox_id": sandbox_id,
            "namespace": namespace,
            "task_id": job_id,
            "created_at": time.time(),
            "started_at": None,
            "finished_at": None,
            "worker": None,
            "pid": None,
            "result": None,
            "message": "",
            "node": node,
        }
        created = self._create(keys=[job_key(job_id)], args=[self.settings.job_ttl, *_encode(dict(record))])
        if not created:
            raise InvalidInputError(f"job id {job_id!r} is already in use: pick another or omit it")
        return record

    @translates_errors
    def get(self, job_id: str) -> JobRecord | None:
        """The job's record as it stands (None when there is none)."""
        raw = self.redis.hgetall(job_key(job_id))
        if not raw or "status" not in raw:
            return None
        record = {name: json.loads(value) for name, value in raw.items()}
        output = self.redis.get(job_output_key(job_id))
        if output:
            record["output"] = output
        return cast(JobRecord, record)

    def _apply(
        self, job_id: str, fields: dict[str, Any], *, mode: Literal["guarded", "always"] = "guarded"
    ) -> bool:
        result = self._transition(keys=[job_key(job_id)], args=[mode, *_encode(fields)])
        return bool(result == 1)

    @translates_errors
    def receive(self, job_id: str, worker: str) -> None:
        """A worker took the job's message: from now until the job starts, its heartbeat (set
        here, renewed by the start) says the worker lives; a worker that dies in between leaves
        a job that will never run, which :meth:`end_if_lost` then ends. One round trip: it runs in
        the worker's consumer, on the way of every message."""
        self._take_job(job_id, worker, "receive")

    @translates_errors
    def start(self, job_id: str, worker: str) -> bool:
        """Claim the job for ``worker``: False when it was cancelled, ended or already started
        meanwhile (its message was delivered twice): then this delivery must not run it.
        One round trip (cancel check, heartbeat, watch and claim together)."""
        claim = {"state": "started", "started_at": time.time(), "worker": worker}
        return self._take_job(job_id, worker, "start", claim) == 1

    def _take_job(
        self, job_id: str, worker: str, step: Literal["receive", "start"], claim: dict[str, Any] | None = None
    ) -> int:
        keys = [job_key(job_id), job_cancel_key(job_id), job_alive_key(job_id), STARTED_JOBS]
        args: list[str | float] = [job_id, worker, self.settings.heartbeat_ttl, step, *_encode(claim or {})]
        return int(self._take(keys=keys, args=args))

    @translates_errors
    def heartbeat(self, job_id: str, worker: str) -> None:
        self.redis.set(job_alive_key(job_id), worker, ex=self.settings.heartbeat_ttl)

    @translates_errors
    def set_pid(self, job_id: str, pid: int) -> None:
        self._apply(job_id, {"pid": pid}, mode="always")

    @translates_errors
    def append_output(self, job_id: str, output: str) -> None:
        """Keep the last ``output_tail_bytes`` of a job's output, in whole UTF-8 characters."""
        key = job_output_key(job_id)
        limit = self.settings.output_tail_bytes
        pipe = self.redis.pipeline(transaction=False)
        pipe.append(key, output)
        pipe.expire(key, self.settings.job_ttl)
        length, _ = pipe.execute()
        if length > 2 * limit:
            # Cut in Python, not with GETRANGE: a byte offset can split a character, and a value
            # that is not UTF-8 would break every later read of the job.
            whole = text(self.redis.get(key) or "")
            self.redis.set(key, whole.encode()[-limit:].decode(errors="ignore"), ex=self.settings.job_ttl)

    @translates_errors
    def finish(
        self, job_id: str, status: JobRecordStatus, result: Mapping[str, object] | None, message: str = ""
    ) -> bool:
        """End the job (``done``, ``error`` or ``cancelled``) unless it already ended; True when this
        call ended it. ``result`` is the dict the synchronous call would have returned."""
        if status not in TERMINAL_STATES:
            raise ValueError(f"a job ends done, error or cancelled, not {status!r}")
        outcome = None if result is None else dict(result)
        fields = {"status": status, "finished_at": time.time(), "result": outcome, "message": message}
        keys = [job_key(job_id), STARTED_JOBS, job_alive_key(job_id)]
        args = [job_id, *_encode(fields)]
        return bool(replicated(self.settings, self.redis, self._finish, keys=keys, args=args) == 1)

    @translates_errors
    def cancel(self, job_id: str) -> bool:
        """Flag the job cancelled (its worker watches the flag) and end it; False if it had ended."""
        self.redis.set(job_cancel_key(job_id), "1", ex=self.settings.job_ttl)
        fields = {"status": "cancelled", "finished_at": time.time(), "message": "cancelled by kill_job"}
        # replicated: the flag's write comes before the end's in the one replication stream
        keys, args = [job_key(job_id)], ["guarded", *_encode(fields)]
        return bool(replicated(self.settings, self.redis, self._transition, keys=keys, args=args) == 1)

    @translates_errors
    def is_cancelled(self, job_id: str) -> bool:
        return bool(self.redis.exists(job_cancel_key(job_id)))

    # -- lost workers --------------------------------------------------------------------------

    @translates_errors
    def end_if_lost(self, job_id: str) -> bool:
        """End the job as ``error`` if the worker that took it stopped beating; True if this call
        ended it. A job ended so after it started is left for a reaper to stop its work."""
        record = self.get(job_id)
        if record is None or record["status"] != "running":
            return False
        node_name = record.get("node")
        node = self.nodes.lost(node_name) if node_name else None
        if node is not None:  # nothing of it can be reached or stopped: its node is gone
            return self.finish(job_id, "error", None, f"the job's {lost_message(node)}")
        if not self._lost(record):
            return False
        if record["state"] != "started":
            return self.finish(job_id, "error", None, LOST_BEFORE_START)
        if not self.finish(job_id, "error", None, LANES_LOST if record["kind"] == "map" else LOST):
            return False
        self.orphan(job_id)
        return True

    def _lost(self, record: JobRecord) -> bool:
        if record["status"] != "running":
            return False
        job_id = record["job_id"]
        if record["state"] == "started":
            if time.time() - (record["started_at"] or 0.0) < self.settings.heartbeat_ttl:
                return False
        elif not self.redis.sismember(STARTED_JOBS, job_id):
            return False  # still waiting in the queue: no worker has it
        return not self.redis.exists(job_alive_key(job_id))

    @translates_errors
    def orphan(self, job_id: str) -> None:
        """Leave the job's work to be stopped by a reaper (see :meth:`reap`)."""
        self.redis.sadd(ORPHANED_JOBS, job_id)

    @translates_errors
    def reap(self) -> list[str]:
        """End every watched job whose worker is gone; return the ids of the jobs ended so, here or
        elsewhere, whose work is still to be stopped (each id is returned to one caller only)."""
        for reply in self.redis.smembers(STARTED_JOBS):
            job_id = text(reply)
            record = self.get(job_id)
            if record is None or record["status"] != "running":
                self.redis.srem(STARTED_JOBS, job_id)
            else:
                self.end_if_lost(job_id)
        pipe = self.redis.pipeline()  # a transaction: two reapers never both take an orphan
        pipe.smembers(ORPHANED_JOBS)
        pipe.delete(ORPHANED_JOBS)
        orphans, _ = pipe.execute()
        return sorted(orphans)
