"""Batch maps, the client's side: a job of many code items, run in a pool of sandboxes made for it.

:meth:`MapJobs.submit` records the job and its items (``e2bq.stores.maps``) and sends the lanes: one
per sandbox of the pool, at most ``pool_size``. On a local cluster each lane gets a slot reserved
on the least loaded live node, and the lanes of a node go together, a few per task, to that node's
batch queue (``e2bq.queues``); lanes no node had room for go to the shared batch queue, where a
worker waits for a slot on its own node. On E2B's cloud every lane goes to the shared batch queue
and the creation shaping bounds the creates. The workers' side is ``workers/batchmap.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from ..errors import E2BQError, InvalidInputError
from ..protocol import DEFAULT_CODE_TIMEOUT, MAP_LANES, LaneArgs, MapLanesArgs, PlacementArgs
from ..stores.jobs import JobStore
from ..stores.maps import MapStore
from ..stores.nodes import Placement
from ..types import TERMINAL_STATES, JobRecord, MapAcceptedResult, MapItemResult, MapResults, PendingItem
from .inputs import check_timeout
from .manager import SandboxManager

MAX_POOL_SIZE = 500  # sandboxes one map may use at once
MAX_RETRIES = 100  # times one item may be run again
MAX_RESULTS = 1000  # items one get_job_results call returns at most
LANES_PER_TASK = 10  # lanes one worker runs together on its SDK loop


class MapJobs:
    """Submits batch maps and reads their progress and results."""

    def __init__(self, manager: SandboxManager, jobs: JobStore) -> None:
        self.manager = manager
        self.jobs = jobs
        self.maps = MapStore(manager.settings, jobs.redis)

    def submit(
        self,
        codes: Sequence[str],
        *,
        pool_size: int,
        timeout_each: float | None,
        retries: int,
        job_id: str | None,
        notify: Mapping[str, str] | None = None,
    ) -> MapAcceptedResult:
        """Record the map as job ``job_id`` (a new id if None) and send its lanes; the job is
        ``done`` at once when there are no items. InvalidInputError names a bad argument."""
        items = _check_codes(codes)
        pool_size = _check_count(pool_size, "pool_size", 1, MAX_POOL_SIZE)
        retries = _check_count(retries, "retries", 0, MAX_RETRIES)
        check_timeout(timeout_each, "timeout_each")
        if job_id is not None and (not isinstance(job_id, str) or not job_id.strip()):
            raise InvalidInputError("job_id must be a non-empty string")
        job_id = job_id or uuid.uuid4().hex
        lanes = min(pool_size, len(items))
        self.jobs.create(job_id, "map", "", self.manager.namespace, notify=notify)
        self.maps.create(job_id, items, lanes=lanes)
        accepted: MapAcceptedResult = {"status": "accepted", "job_id": job_id, "total": len(items)}
        if not items:
            self.jobs.finish(job_id, "done", None, "0 items: 0 succeeded, 0 failed")
            return accepted
        base = MapLanesArgs(
            job_id=job_id, group=0, lanes=[], namespace=self.manager.namespace,
            options=self.manager.default_options, timeout_each=float(timeout_each or DEFAULT_CODE_TIMEOUT),
            retries=retries,
        )
        plan = self._plan(lanes)
        try:
            for group, (node, part) in enumerate(plan):
                route = self.manager.router.to_node(node, batch=True)
                args: MapLanesArgs = {**base, "group": group, "lanes": part}
                task_id = f"{job_id}-lanes-{group}"
                self.manager.dispatcher.submit(MAP_LANES, args, task_id=task_id, route=route)
        except E2BQError as exc:  # the broker is away: end the job rather than leave it half sent
            self.jobs.finish(job_id, "error", None, f"the map's lanes could not be sent: {exc}")
            for _, part in plan:
                self._unplace(part)
            raise
        return accepted

    def _plan(self, lanes: int) -> list[tuple[str | None, list[LaneArgs]]]:
        """The lane tasks to send: (the node whose batch queue takes it, None for the shared one;
        its lanes). Each lane takes a slot on the least loaded live node while any has one."""
        by_node: dict[str | None, list[LaneArgs]] = {}
        on_cluster = self.manager.nodes.any()
        for lane in range(lanes):
            placement = self.manager.nodes.place() if on_cluster else None
            if placement is None:
                by_node.setdefault(None, []).append(LaneArgs(lane=lane))
                on_cluster = False  # every node is full: the rest wait for a slot in the workers
                continue
            slot = PlacementArgs(node=placement.node, reservation=placement.reservation)
            by_node.setdefault(placement.node, []).append(LaneArgs(lane=lane, placement=slot))
        return [
            (node, part[start : start + LANES_PER_TASK])
            for node, part in by_node.items()
            for start in range(0, len(part), LANES_PER_TASK)
        ]

    def _unplace(self, lanes: list[LaneArgs]) -> None:
        for lane in lanes:
            slot = lane.get("placement")
            if slot is not None:
                self.manager.nodes.settle(
                    Placement(node=slot["node"], url="", reservation=slot["reservation"]), made=False
                )

    def with_progress(self, record: JobRecord) -> JobRecord:
        """A map job's record with its counts: ``total``, ``done`` and ``failed``."""
        progress = self.maps.progress(record["job_id"])
        if progress is not None:
            record["total"], record["done"] = progress["total"], progress["done"]
            record["failed"] = progress["failed"]
        return record

    def results(self, record: JobRecord, offset: object, limit: object) -> MapResults:
        """Items ``offset`` to ``offset + limit - 1`` of a map job, in input order."""
        job_id = record["job_id"]
        if record["kind"] != "map":
            raise InvalidInputError(f"job {job_id} is a {record['kind']} job: get_job_status has its result")
        offset = _check_count(offset, "offset", 0, None)
        limit = _check_count(limit, "limit", 1, MAX_RESULTS)
        progress = self.maps.progress(job_id)
        total = progress["total"] if progress is not None else 0
        stop = min(total, offset + limit)
        found = self.maps.results(job_id, offset, stop)
        items = [
            result if result is not None else _unfinished(record, index)
            for index, result in zip(range(offset, stop), found, strict=True)
        ]
        return {"status": "success", "job_id": job_id, "offset": offset, "total": total, "results": items}


def _unfinished(record: JobRecord, index: int) -> MapItemResult | PendingItem:
    if record["status"] not in TERMINAL_STATES:
        return {"status": "running", "index": index}
    return {
        "status": "error",
        "message": f"item {index} was not run: the job ended {record['status']} ({record['message']})",
    }


def _check_codes(codes: object) -> list[str]:
    if isinstance(codes, str) or not isinstance(codes, list | tuple):
        raise InvalidInputError("codes must be a list of code strings (one item each), not a single string")
    for index, code in enumerate(codes):
        if not isinstance(code, str):
            kind = type(code).__name__
            raise InvalidInputError(f"codes must be a list of strings: item {index} is a {kind}")
    return list(codes)


def _check_count(value: object, name: str, low: int, high: int | None) -> int:
    """``value`` if it is a whole number from ``low`` to ``high`` (None: no bound); else
    InvalidInputError naming the parameter."""
    in_range = isinstance(value, int) and low <= value and (high is None or value <= high)
    if isinstance(value, int) and not isinstance(value, bool) and in_range:
        return value
    bound = f"between {low} and {high}" if high is not None else f">= {low}"
    raise InvalidInputError(f"{name} must be a whole number {bound}, not {value!r}")
