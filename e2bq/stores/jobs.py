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
from .connection import connect, text, translates_errors
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
# Modes: "always" writes; "guarded" writes unless the job ended; "claim" also needs it still queued.
_TRANSITION = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
if ARGV[1] ~= 'always' and (status == '"done"' or status == '"error"' or status == '"cancelled"') then
  return -1
end
if ARGV[1] == 'claim' and redis.call('HGET', KEYS[1], 'state') ~= '"queued"' then return -1 end
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
        key = job_key(job_id)
        if not self.redis.hsetnx(key, "status", json.dumps("running")):
            raise InvalidInputError(f"job id {job_id!r} is already in use: pick another or omit it")
        encoded = _encode(dict(record))
        pipe = self.redis.pipeline()
        pipe.hset(key, mapping=dict(zip(encoded[::2], encoded[1::2], strict=True)))
        pipe.expire(key, self.settings.job_ttl)
        pipe.execute()
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
        self, job_id: str, fields: dict[str, Any], *, mode: Literal["guarded", "always", "claim"] = "guarded"
    ) -> bool:
        result = self._transition(keys=[job_key(job_id)], args=[mode, *_encode(fields)])
        return bool(result == 1)

    @translates_errors
    def receive(self, job_id: str, worker: str) -> None:
        """A worker took the job's message: from now until the job starts, its heartbeat (set
        here, renewed by the start) says the worker lives; a worker that dies in between leaves
        a job that will never run, which :meth:`end_if_lost` then ends."""
        if self.redis.exists(job_key(job_id)):
            self.heartbeat(job_id, worker)
            self.redis.sadd(STARTED_JOBS, job_id)

    @translates_errors
    def start(self, job_id: str, worker: str) -> bool:
        """Claim the job for ``worker``: False when it was cancelled, ended or already started
        meanwhile (its message was delivered twice): then this delivery must not run it."""
        if self.is_cancelled(job_id):
            return False
        self.heartbeat(job_id, worker)
        self.redis.sadd(STARTED_JOBS, job_id)
        return self._apply(
            job_id, {"state": "started", "started_at": time.time(), "worker": worker}, mode="claim"
        )

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
        length = self.redis.append(key, output)
        if length > 2 * limit:
            # Cut in Python, not with GETRANGE: a byte offset can split a character, and a value
            # that is not UTF-8 would break every later read of the job.
            whole = text(self.redis.get(key) or "")
            self.redis.set(key, whole.encode()[-limit:].decode(errors="ignore"))
        self.redis.expire(key, self.settings.job_ttl)

    @translates_errors
    def finish(
        self, job_id: str, status: JobRecordStatus, result: Mapping[str, object] | None, message: str = ""
    ) -> bool:
        """End the job (``done``, ``error`` or ``cancelled``) unless it already ended; True when this
        call ended it. ``result`` is the dict the synchronous call would have returned."""
        if status not in TERMINAL_STATES:
            raise ValueError(f"a job ends done, error or cancelled, not {status!r}")
        outcome = None if result is None else dict(result)
        ended = self._apply(
            job_id, {"status": status, "finished_at": time.time(), "result": outcome, "message": message}
        )
        pipe = self.redis.pipeline()
        pipe.srem(STARTED_JOBS, job_id)
        pipe.delete(job_alive_key(job_id))
        pipe.execute()
        return ended

    @translates_errors
    def cancel(self, job_id: str) -> bool:
        """Flag the job cancelled (its worker watches the flag) and end it; False if it had ended."""
        self.redis.set(job_cancel_key(job_id), "1", ex=self.settings.job_ttl)
        return self._apply(
            job_id, {"status": "cancelled", "finished_at": time.time(), "message": "cancelled by kill_job"}
        )

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
