"""A batch map's lanes: each makes a sandbox on this worker's node and runs item after item in it.

One task carries the lanes the client placed on one node (a few each), and they run concurrently
on the worker's SDK loop, so a pool of twenty sandboxes holds a couple of worker threads, not
twenty. A lane takes the next item from the map's store (``e2bq.stores.maps``), runs its code in
its sandbox as ``run_code`` would, and records the result; the item's state (variables, files) is
left in the sandbox for the lane's next item. An item whose sandbox died under it is run again on a
fresh sandbox, up to ``retries`` times. When nothing is left to take while other lanes still hold
items, a lane kills its sandbox (the slot is freed) and waits to take over the items of a lane
whose worker died.

A watcher beats for the task and the job, and cancels the lanes as soon as ``kill_job`` flags the
job; every lane kills its sandbox on the way out. The lane recording the last item ends the job
``done``; the last lane to stop ends it ``error`` if items were left (no sandbox could be made).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace

from e2bq.errors import CapacityError, E2BQError, ExecutionTimeoutError, ProviderError, SandboxNotFoundError
from e2bq.protocol import (
    CREATE_SANDBOX,
    RUN_CODE,
    WORKER_MARGIN,
    CreateSandboxArgs,
    Deadline,
    KillSandboxArgs,
    LaneArgs,
    MapLanesArgs,
    PlacementArgs,
    RunCodeArgs,
)
from e2bq.stores.jobs import JobStore
from e2bq.stores.maps import MapStore, Taken
from e2bq.stores.nodes import NodeStore, Placement
from e2bq.types import TERMINAL_STATES, ErrorResult, LanesResult, MapItemResult

from .operations import Context, create_sandbox, kill_sandbox, run_code
from .runner import error_result
from .translate import translate

log = logging.getLogger("e2bq.worker")
_WAIT = 0.2  # seconds between looks for work while other lanes hold the last items
_WATCH = 0.25  # seconds between looks at the cancel flag
_BEAT = 3.0  # seconds between heartbeats
_LIFETIME = 300.0  # seconds a lane's sandbox lives beyond an item's bound, extended as items run
_PLACE_RETRY = 0.2  # seconds between looks for a free slot on this node


async def run_lanes(ctx: Context, args: MapLanesArgs) -> LanesResult:
    """Run this task's lanes of the map ``args["job_id"]`` until it has nothing left for them."""
    maps = MapStore(ctx.settings, ctx.registry.redis)
    job_id, group = args["job_id"], str(args["group"])
    if not maps.claim(job_id, group):  # a second delivery of the message: the first runs these lanes
        return {"status": "success", "job_id": job_id, "lanes": 0, "items": 0}
    ctx.jobs.start(job_id, worker=ctx.worker)  # the first lane task to start marks the job started
    lanes = [Lane(ctx, maps, args, spec) for spec in args["lanes"]]
    running = [asyncio.create_task(lane.run()) for lane in lanes]
    watcher = asyncio.create_task(_watch(ctx, maps, job_id, group, lanes, running))
    try:
        await asyncio.gather(*running, return_exceptions=True)  # each lane reports its own failures
    finally:
        watcher.cancel()
    recorded = sum(lane.items for lane in lanes)
    return {"status": "success", "job_id": job_id, "lanes": len(lanes), "items": recorded}


async def _watch(
    ctx: Context,
    maps: MapStore,
    job_id: str,
    group: str,
    lanes: list[Lane],
    running: list[asyncio.Task[None]],
) -> None:
    """Beat for the lane task and the job; stop the lanes once the job is cancelled.

    Their sandboxes are killed first: a call into a sandbox may not end when cancelled (the SDK
    waits for its stream, and a cell that never ends never closes it), but it ends when the
    sandbox does."""
    beaten = time.monotonic()
    while True:
        await asyncio.sleep(_WATCH)
        try:
            if ctx.jobs.is_cancelled(job_id):
                for lane in lanes:
                    lane.stopping = True  # no fresh sandbox for an item whose sandbox is killed now
                await asyncio.gather(*(lane.drop_sandbox() for lane in lanes), return_exceptions=True)
                for task in running:
                    task.cancel()
                return
            if time.monotonic() - beaten >= _BEAT:
                maps.beat(job_id, group)
                ctx.jobs.heartbeat(job_id, ctx.worker)
                beaten = time.monotonic()
        except E2BQError as exc:  # Redis is away for now: look again (the lanes meet it too)
            log.warning("map %s: cannot watch its job: %s", job_id, exc)


class Lane:
    """One sandbox of the pool and the items it runs, one after another."""

    def __init__(self, ctx: Context, maps: MapStore, args: MapLanesArgs, spec: LaneArgs) -> None:
        self.ctx, self.maps, self.args = ctx, maps, args
        self.job_id, self.group, self.lane = args["job_id"], str(args["group"]), spec["lane"]
        self.placement: PlacementArgs | None = spec.get("placement")
        self.timeout = args["timeout_each"]
        # an item's bounds: run_code's, from timeout_each; no job of its own (no output tail)
        self.item_ctx = replace(ctx, job_id=None, deadline=Deadline.bounded(self.timeout))
        self.sandbox_id: str | None = None
        self.expires_at = 0.0
        self.holding: int | None = None  # the index of the item this lane has taken, until recorded
        self.stopping = False  # the job was cancelled: the lane is being stopped
        self.items = 0

    async def run(self) -> None:
        try:
            await self._work()
        except E2BQError as exc:  # Redis went away: this lane can do nothing more
            self._note(f"lane {self.lane} stopped: {exc}")
        except Exception as exc:
            log.error("lane %s of map %s failed", self.lane, self.job_id, exc_info=exc)
            self._note(f"lane {self.lane} failed: {type(exc).__name__}: {exc}")
        finally:
            await asyncio.shield(self._stop())

    async def _work(self) -> None:
        while True:
            taken = self.maps.take(self.job_id, self.group)
            if taken.kind in ("stop", "drained"):
                return
            if taken.kind == "wait":
                await self.drop_sandbox()  # free the slot; a takeover makes a fresh one
                await asyncio.sleep(_WAIT)
                continue
            self.holding = taken.index
            if taken.attempts > self.args["retries"]:  # its lanes died under it, time after time
                self._record(taken.index, _lost_item(taken))
            elif not await self._run(taken):
                return
            self.holding = None

    async def _run(self, item: Taken) -> bool:
        """Run the item, on fresh sandboxes while its sandbox dies (``retries`` times at most);
        False when no sandbox could be made, or the lane is being stopped (the item is given back
        and this lane stops)."""
        while True:
            if self.stopping:
                return False
            if self.sandbox_id is None:
                try:
                    self.sandbox_id = await self._new_sandbox()
                except Exception as exc:
                    failed = error_result(CREATE_SANDBOX, exc, None, self.ctx)
                    self._note(f"no sandbox could be made: {failed['message']}")
                    return False
                if self.stopping:  # stopped while it was being made (the SDK's create may not
                    await self.drop_sandbox()  # give way to a cancel): it must not run anything
                    return False
            result, gone = await self._execute(item.code)
            if gone:
                await self.drop_sandbox()
                if self.maps.lost(self.job_id, item.index) <= self.args["retries"]:
                    continue
            self._record(item.index, result)
            return True

    async def _execute(self, code: str) -> tuple[MapItemResult, bool]:
        """The item's result as run_python_code gives it, and whether its sandbox died under it."""
        sandbox_id = str(self.sandbox_id)
        try:
            await self._keep_alive(sandbox_id)
            call = RunCodeArgs(sandbox_id=sandbox_id, code=code, job=False)
            return await asyncio.wait_for(run_code(self.item_ctx, call), self.timeout + WORKER_MARGIN), False
        except TimeoutError:
            late = ExecutionTimeoutError(f"the item did not finish within {self.timeout:g} s (timeout_each)")
            return error_result(RUN_CODE, late, sandbox_id, self.ctx), False
        except Exception as exc:
            gone = isinstance(translate(exc, sandbox_id), SandboxNotFoundError | ProviderError)
            return error_result(RUN_CODE, exc, sandbox_id, self.ctx), gone

    async def _new_sandbox(self) -> str:
        """A sandbox made as ``_make_sandbox`` makes it, shielded from the lane's cancel: a sandbox
        being made when ``kill_job`` stops the lane becomes the lane's, so its stop kills it, rather
        than living on unseen until its timeout."""
        making = asyncio.ensure_future(self._make_sandbox())
        try:
            return await asyncio.shield(making)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                self.sandbox_id = await making
            raise

    async def _make_sandbox(self) -> str:
        """A sandbox for this lane on this worker's node, made as create_sandbox makes any."""
        placement, self.placement = self.placement or await self._place_here(), None
        args = CreateSandboxArgs(
            timeout=int(self.timeout + _LIFETIME),
            metadata={"e2bq_map_job": self.job_id, "e2bq_map_lane": str(self.lane)},
            namespace=self.args["namespace"],
            set_default=False,
            options=self.args["options"],
        )
        if placement is not None:
            args["placement"] = placement
        made = await create_sandbox(self.ctx, args)
        self.expires_at = made["result"]["expires_at"]
        return made["sandbox_id"]

    async def _place_here(self) -> PlacementArgs | None:
        """A slot on this worker's node (a local sandbox host), waiting up to ``create_wait`` for one;
        None for E2B's cloud, where the creation shaping alone bounds creates."""
        settings = self.ctx.settings
        if settings.provider != "local":
            return None
        nodes = NodeStore(settings, self.ctx.registry.redis)
        until = time.monotonic() + settings.create_wait
        while (placement := nodes.place(settings.node)) is None:
            if time.monotonic() >= until:
                raise CapacityError(
                    f"node {settings.node} had no free sandbox slot within {settings.create_wait:g} s "
                    "(E2BQ_CREATE_WAIT): other lanes carry on"
                )
            await asyncio.sleep(_PLACE_RETRY)
        return PlacementArgs(node=placement.node, reservation=placement.reservation)

    async def _keep_alive(self, sandbox_id: str) -> None:
        """Extend the sandbox's life when the next item could outlast it."""
        if self.expires_at - time.time() >= self.timeout + 60:
            return
        sandbox = await self.ctx.loop.sandbox(sandbox_id)
        await sandbox.set_timeout(int(self.timeout + _LIFETIME))
        self.expires_at = time.time() + self.timeout + _LIFETIME
        self.ctx.registry.extend(sandbox_id, self.expires_at)

    async def drop_sandbox(self) -> None:
        sandbox_id, self.sandbox_id = self.sandbox_id, None
        if sandbox_id is not None:
            try:
                await kill_sandbox(self.ctx, KillSandboxArgs(sandbox_id=sandbox_id))
            except Exception as exc:  # gone already, or its host is: nothing more to do for it
                log.warning("could not kill sandbox %s of map %s: %s", sandbox_id, self.job_id, exc)

    def _record(self, index: int, result: MapItemResult) -> None:
        outcome = self.maps.record(self.job_id, index, result)
        if outcome in ("recorded", "last"):
            self.items += 1
        if outcome == "last":
            conclude(self.ctx.jobs, self.maps, self.job_id)

    def _note(self, why: str) -> None:
        with contextlib.suppress(E2BQError):
            self.maps.note(self.job_id, why)

    async def _stop(self) -> None:
        """Kill the sandbox, give back an item not finished and a slot not used, and end the job if
        this was its last lane."""
        await self.drop_sandbox()
        with contextlib.suppress(E2BQError):  # Redis is away: the job's heartbeat lapses, the reaper ends it
            if (unused := self.placement) is not None:
                slot = Placement(node=unused["node"], url="", reservation=unused["reservation"])
                NodeStore(self.ctx.settings, self.ctx.registry.redis).settle(slot, made=False)
            if self.holding is not None:
                self.maps.release(self.job_id, self.holding, self.group)
            if self.maps.lane_stopped(self.job_id) <= 0:
                conclude(self.ctx.jobs, self.maps, self.job_id)


def conclude(jobs: JobStore, maps: MapStore, job_id: str) -> None:
    """End the map if every item has a result (``done``) or no lane is left (``error``), and once it
    ended, drop what only lanes need."""
    progress = maps.progress(job_id)
    if progress is None:
        return
    total, done, failed = progress["total"], progress["done"], progress["failed"]
    if done + failed >= total:
        jobs.finish(job_id, "done", None, f"{total} items: {done} succeeded, {failed} failed")
    elif progress["lanes"] <= 0:
        why = maps.why_stopped(job_id) or "their workers stopped"
        jobs.finish(
            job_id, "error", None,
            f"{total - done - failed} of {total} items were not run: every lane stopped ({why})",
        )
    record = jobs.get(job_id)
    if record is not None and record["status"] in TERMINAL_STATES:
        maps.clear_work(job_id)


def _lost_item(item: Taken) -> ErrorResult:
    return {
        "status": "error",
        "message": f"item {item.index} was not finished: the lane running it was lost {item.attempts} "
        "times (its worker stopped); retries is the bound",
        "error_type": "WorkerStoppedError",
    }
