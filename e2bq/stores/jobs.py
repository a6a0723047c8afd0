"""The job store: every background job's record in Redis, readable by any process.

Transitions are atomic (a Lua script): once a job is ``done``, ``error`` or ``cancelled`` nothing
moves it again, so a worker finishing a job that was just cancelled cannot revive it.

A taken job has a heartbeat: its worker renews ``e2bq:job:<id>:alive`` every few seconds. When the
worker dies (SIGKILL, out of memory, host gone) the heartbeat lapses. A code or command job is then
handed over (:meth:`JobStore.reap`, run by every worker's reaper; one wins): its state becomes
``handed_over`` and the reaper sends its task again, with the arguments its client sent (kept with
the job), so that another worker claims it (``start(..., takeover=True)``, once) and re-attaches to
its work in the sandbox, never running it a second time (see ``workers.jobwork``). A stopping
worker gives its own jobs up the same way (:meth:`JobStore.give_up`).

A job that cannot be taken over — a map (its lanes take over each other's items), a job handed
over ``MAX_TAKEOVERS`` times, one whose node is lost (``e2bq.stores.nodes``), one no worker took
for ``takeover_wait`` seconds — ends ``error`` (:meth:`JobStore.end_if_lost`, called by reapers
and by the toolkit before it reports a job's status), so no job is left ``running``; a reaper then
stops what it left running in its sandbox.

Reading a job (:meth:`JobStore.get`) never changes it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple, cast

import redis

from ..config import Settings
from ..errors import InvalidInputError
from ..types import TERMINAL_STATES, JobKind, JobRecord, JobRecordStatus
from . import jobscripts as scripts
from .connection import connect, replicated, text, translates_errors
from .keys import (
    EVENTS,
    ORPHANED_JOBS,
    OUTBOX,
    OUTBOX_WAKE,
    STARTED_JOBS,
    job_alive_key,
    job_args_key,
    job_cancel_key,
    job_key,
    job_output_key,
    namespace_jobs_key,
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

MAX_TAKEOVERS = 5  # a job whose workers die this many times under it ends as lost
TAKEN_OVER_KINDS = frozenset({"code", "command"})  # a map's lanes take over from each other


class Reaped(NamedTuple):
    """What a reaper's round found: jobs ended whose work is to be stopped, and jobs handed over
    (id, takeover number) whose task is to be sent again."""

    orphans: list[str]
    handed_over: list[tuple[str, int]]


def _encode(fields: dict[str, Any]) -> list[str]:
    flat: list[str] = []
    for name, value in fields.items():
        flat += [name, json.dumps(value)]
    return flat


class JobStore:
    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = client or connect(settings)
        self._transition = self.redis.register_script(scripts.TRANSITION)
        self._create = self.redis.register_script(scripts.CREATE)
        self._take = self.redis.register_script(scripts.TAKE)
        self._finish = self.redis.register_script(scripts.FINISH)
        self._handover = self.redis.register_script(scripts.HANDOVER)
        self._beat = self.redis.register_script(scripts.BEAT)
        self.nodes = NodeStore(settings, self.redis)

    @translates_errors
    def create(
        self,
        job_id: str,
        kind: JobKind,
        sandbox_id: str,
        namespace: str,
        node: str | None = None,
        args: Mapping[str, object] | None = None,
        *,
        notify: Mapping[str, str] | None = None,
    ) -> JobRecord:
        """Record a new queued job (for a sandbox on ``node``); a job id can be used once. ``args``,
        its task's arguments, are kept with it to send the task again should its worker be lost.
        ``notify`` adds ``callback_url``, ``on_done`` and ``on_done_queue`` (see ``e2bq.callbacks``)."""
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
        kept = json.dumps(dict(args)) if args is not None else ""
        fields = _encode({**record, **(notify or {})})
        created = self._create(
            keys=[job_key(job_id), EVENTS, job_args_key(job_id), namespace_jobs_key(namespace)],
            args=[self.settings.job_ttl, self.settings.events_max, kept, *fields],
        )
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

    @translates_errors
    def brief(self, job_id: str) -> tuple[JobKind, JobRecordStatus] | None:
        """The job's kind and status (None when there is no record), without reading its result,
        which may be large (a command's whole output)."""
        kind, status = self.redis.hmget(job_key(job_id), ["kind", "status"])
        if kind is None or status is None:
            return None
        return cast(JobKind, json.loads(kind)), cast(JobRecordStatus, json.loads(status))

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
    def start(self, job_id: str, worker: str, *, takeover: bool = False) -> bool:
        """Claim the job for ``worker``: False when it was cancelled, ended or already started
        meanwhile (its message was delivered twice): then this delivery must not run it. With
        ``takeover``, claim a job handed over from a lost worker (see :meth:`reap`) instead.
        One round trip (cancel check, heartbeat, watch and claim together)."""
        claim = {"state": "started", "started_at": time.time(), "worker": worker}
        return self._take_job(job_id, worker, "resume" if takeover else "start", claim) == 1

    @translates_errors
    def args(self, job_id: str) -> dict[str, Any] | None:
        """The arguments of the job's task, as its client sent them (None: not kept)."""
        raw = self.redis.get(job_args_key(job_id))
        return json.loads(raw) if raw else None

    def _take_job(
        self,
        job_id: str,
        worker: str,
        step: Literal["receive", "start", "resume"],
        claim: dict[str, Any] | None = None,
    ) -> int:
        keys = [job_key(job_id), job_cancel_key(job_id), job_alive_key(job_id), STARTED_JOBS, EVENTS]
        args: list[str | float] = [
            job_id,
            worker,
            self.settings.heartbeat_ttl,
            step,
            self.settings.events_max,
            *_encode(claim or {}),
        ]
        return int(self._take(keys=keys, args=args))

    @translates_errors
    def heartbeat(self, job_id: str, worker: str) -> bool:
        """Renew the job's heartbeat for ``worker``; False, renewing nothing, when the job is no
        longer that worker's (it was handed over while the worker could not beat: it must stop
        driving it). A map's lane tasks all beat its job."""
        keys = [job_key(job_id), job_alive_key(job_id)]
        return bool(self._beat(keys=keys, args=[json.dumps(worker), worker, self.settings.heartbeat_ttl]))

    @translates_errors
    @translates_errors
    def busy_sandboxes(self) -> set[str]:
        """The sandboxes a started job runs in now, whatever its namespace."""
        ids = [text(reply) for reply in self.redis.smembers(STARTED_JOBS)]
        pipe = self.redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(job_key(job_id), "sandbox_id")
        return {json.loads(raw) for raw in pipe.execute() if raw}

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
        return self._end(job_id, "ended", fields)

    def _end(self, job_id: str, event: Literal["ended", "cancelled"], fields: dict[str, Any]) -> bool:
        """The end transition, once enough replicas have it (see ``replicated``)."""
        keys = [job_key(job_id), STARTED_JOBS, job_alive_key(job_id), EVENTS, OUTBOX, OUTBOX_WAKE]
        args: list[str | int] = [job_id, self.settings.events_max, event, *_encode(fields)]
        return bool(replicated(self.settings, self.redis, self._finish, keys=keys, args=args) == 1)

    @translates_errors
    def cancel(self, job_id: str) -> bool:
        """Flag the job cancelled (its worker watches the flag) and end it; False if it had ended."""
        self.redis.set(job_cancel_key(job_id), "1", ex=self.settings.job_ttl)
        fields = {"status": "cancelled", "finished_at": time.time(), "message": "cancelled by kill_job"}
        return self._end(job_id, "cancelled", fields)

    @translates_errors
    def is_cancelled(self, job_id: str) -> bool:
        return bool(self.redis.exists(job_cancel_key(job_id)))

    # -- lost workers --------------------------------------------------------------------------

    @translates_errors
    def end_if_lost(self, job_id: str) -> bool:
        """End the job as ``error`` if the worker that took it stopped beating and nobody takes it
        over; True if this call ended it. A job ended so after it started is left for a reaper to
        stop its work.

        A code or command job is not ended at once: a worker's reaper hands it over to another
        worker (:meth:`reap`), which re-attaches to its work. Only when no worker has taken it
        for ``takeover_wait`` seconds after a reader first found it lost (no worker is left to
        reap), or its takeovers are spent, does it end here."""
        record = self.get(job_id)
        if record is None or record["status"] != "running":
            return False
        node_name = record.get("node")
        node = self.nodes.lost(node_name) if node_name else None
        if node is not None:  # nothing of it can be reached or stopped: its node is gone
            return self.finish(job_id, "error", None, f"the job's {lost_message(node)}")
        if not self._lost(record):
            return False
        if self._can_take_over(record) and not self._unattended(record):
            return False
        if _never_started(record):
            return self.finish(job_id, "error", None, LOST_BEFORE_START)
        if not self.finish(job_id, "error", None, _lost_message(record, self.settings.takeover_wait)):
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

    @staticmethod
    def _can_take_over(record: JobRecord) -> bool:
        return record["kind"] in TAKEN_OVER_KINDS and record.get("takeovers", 0) < MAX_TAKEOVERS

    def _unattended(self, record: JobRecord) -> bool:
        """Whether a lost job has waited ``takeover_wait`` seconds for a new worker since a reader
        first found it lost (noted now if this is the first time)."""
        seen = record.get("lost_seen_at")
        if seen is None:
            self._apply(record["job_id"], {"lost_seen_at": time.time()})
            return False
        return time.time() - seen > self.settings.takeover_wait

    @translates_errors
    def give_up(self, job_id: str, worker: str) -> int:
        """Hand ``worker``'s own job over to another worker, its work left running (the worker is
        stopping): the takeover's number, or 0 (or -1) when it cannot be: then the worker ends
        it itself. The caller sends the job's task again."""
        return self._hand_over(job_id, json.dumps(worker))

    def _hand_over(self, job_id: str, worker: str) -> int:
        keys = [job_key(job_id), job_alive_key(job_id), job_cancel_key(job_id), EVENTS]
        wait = 4 * self.settings.heartbeat_ttl  # the new worker's time to take it before it is lost again
        args: list[str | float] = [MAX_TAKEOVERS, wait, worker, self.settings.events_max, time.time()]
        return int(self._handover(keys=keys, args=args))

    @translates_errors
    def orphan(self, job_id: str) -> None:
        """Leave the job's work to be stopped by a reaper (see :meth:`reap`)."""
        self.redis.sadd(ORPHANED_JOBS, job_id)

    @translates_errors
    def reap(self) -> Reaped:
        """Hand over every watched code or command job whose worker is gone, and end the others;
        return the jobs handed over (their task is to be sent again, with the takeover's number)
        and the ids of jobs ended so, here or elsewhere, whose work is still to be stopped (each id
        is returned to one caller only)."""
        handed_over: list[tuple[str, int]] = []
        for reply in self.redis.smembers(STARTED_JOBS):
            job_id = text(reply)
            record = self.get(job_id)
            if record is None or record["status"] != "running":
                self.redis.srem(STARTED_JOBS, job_id)
                continue
            node = record.get("node")
            if self._can_take_over(record) and self._lost(record) and not (node and self.nodes.lost(node)):
                number = self._hand_over(job_id, "")
                if number > 0:
                    handed_over.append((job_id, number))
                    continue
            self.end_if_lost(job_id)
        pipe = self.redis.pipeline()  # a transaction: two reapers never both take an orphan
        pipe.smembers(ORPHANED_JOBS)
        pipe.delete(ORPHANED_JOBS)
        orphans, _ = pipe.execute()
        return Reaped(sorted(orphans), handed_over)


def _never_started(record: JobRecord) -> bool:
    """Whether the job's work surely never started in its sandbox (no worker started it)."""
    state = record["state"]
    if state == "handed_over":
        state = record.get("handed_from", state)
    return state != "started"


def _lost_message(record: JobRecord, takeover_wait: float) -> str:
    if record["kind"] == "map":
        return LANES_LOST
    if record["kind"] in TAKEN_OVER_KINDS and record.get("takeovers", 0) >= MAX_TAKEOVERS:
        return f"{LOST}; it was taken over {MAX_TAKEOVERS} times and lost each time"
    if record["kind"] in TAKEN_OVER_KINDS:
        return f"{LOST}; no worker took it over within {takeover_wait:g} s (E2BQ_TAKEOVER_WAIT)"
    return LOST
