"""What a worker watches while an operation runs: kill_job, its own shutdown, heartbeats, expiry.

The SDK loop asks the watch every 50 ms whether to stop the work; the watch answers with the
error to end it with (or None), and on the way writes the job's output gathered meanwhile, keeps
the job's heartbeat fresh and the sandbox alive: a sandbox with work running on it must not expire
mid-job.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from e2bq.config import Settings
from e2bq.errors import E2BQError, JobCancelledError, JobTakenOverError, WorkerStoppedError
from e2bq.stores.jobs import JobStore
from e2bq.stores.registry import Registry
from e2bq.stores.shutdowns import Shutdowns

from .loop import SdkLoop
from .output import OutputTail

log = logging.getLogger("e2bq.worker")
_CHECK_EVERY = 0.25  # seconds between looks at Redis
_BEAT_EVERY = 3.0
_EXTEND_EVERY = 20.0
_KEEP_ALIVE = 300  # seconds of life a sandbox keeps ahead of running work
_REAP_EVERY = 10.0


class Watch:
    def __init__(
        self,
        *,
        jobs: JobStore,
        registry: Registry,
        shutdowns: Shutdowns,
        loop: SdkLoop,
        worker: str,
        job_id: str | None,
        sandbox_id: str | None,
        tail: OutputTail | None = None,
        leave: Callable[[], None] | None = None,
    ) -> None:
        self.jobs, self.registry, self.shutdowns, self.loop = jobs, registry, shutdowns, loop
        self.worker, self.job_id, self.sandbox_id, self.tail = worker, job_id, sandbox_id, tail
        self.leave = leave  # called before a stop for the worker's shutdown, if the work can stay
        # the job was checked for a cancel when it started: the first look is due a little later
        self._checked = self._beaten = time.monotonic()
        # but its sandbox may expire sooner than _EXTEND_EVERY: that look is due at once (cheap, cached)
        self._extended = 0.0

    def __call__(self) -> E2BQError | None:
        now = time.monotonic()
        if now - self._checked < _CHECK_EVERY:
            return None
        self._checked = now
        if self.tail is not None:
            self.tail.flush()
        if self.job_id and self.jobs.is_cancelled(self.job_id):
            return JobCancelledError("the job was cancelled by kill_job")
        stop_at = self.shutdowns.stop_at(self.worker)
        if stop_at is not None and time.time() > stop_at:
            if self.leave is not None:
                self.leave()  # the job is handed over: its work stays running for the next worker
            return WorkerStoppedError(
                f"worker {self.worker} shut down before the job finished (its grace period ended)"
            )
        if self.job_id and now - self._beaten >= _BEAT_EVERY:
            self._beaten = now
            if not self.jobs.heartbeat(self.job_id, self.worker):
                if self.leave is not None:
                    self.leave()  # its work is the new worker's now: it stays running
                return JobTakenOverError(
                    f"worker {self.worker} could not beat for the job in time: another worker took it over"
                )
        if self.sandbox_id and now - self._extended >= _EXTEND_EVERY:
            self._extended = now
            self.keep_alive()
        return None

    def keep_alive(self, needed: float = _KEEP_ALIVE) -> None:
        """Extend the sandbox's lifetime when less than ``needed`` seconds remain (never shorten)."""
        if self.sandbox_id is None:
            return
        known = self.loop.expiry.get(self.sandbox_id)
        if known is None or known - time.time() < needed:
            known = self.registry.expires_at(self.sandbox_id) or 0.0
            self.loop.expiry[self.sandbox_id] = known
        if known - time.time() >= needed:
            return
        asyncio.run_coroutine_threadsafe(self._extend(self.sandbox_id, needed), self.loop.loop)

    async def _extend(self, sandbox_id: str, needed: float) -> None:
        try:
            sandbox = await self.loop.sandbox(sandbox_id)
            await sandbox.set_timeout(int(needed) + 30)
            self.registry.extend(sandbox_id, time.time() + needed + 30)
            self.loop.expiry[sandbox_id] = time.time() + needed + 30
        except Exception as exc:  # the work itself will say what is wrong with the sandbox
            log.debug("could not extend sandbox %s: %s", sandbox_id, exc)


def start_reaper(
    settings: Settings, *, stop_work: Callable[[str], object], take_over: Callable[[str, int], object]
) -> threading.Thread:
    """A thread handing over the jobs of dead workers and ending those it cannot (each worker runs
    one; any of them may take a job).

    ``take_over(job_id, number)`` is called for each job handed over, to send its task again;
    ``stop_work(job_id)`` for each job ended, to stop what it left running in its sandbox.
    """

    def reap_forever() -> None:
        jobs = JobStore(settings)
        while True:
            try:
                reaped = jobs.reap()
                for job_id, number in reaped.handed_over:
                    log.warning("job %s lost its worker; handing it over (takeover %d)", job_id, number)
                    take_over(job_id, number)
                for job_id in reaped.orphans:
                    log.warning("job %s lost its worker; ended as error, stopping its work", job_id)
                    try:
                        stop_work(job_id)
                    except Exception:  # the broker is away (restarting?): try again next round
                        jobs.orphan(job_id)
                        raise
            except Exception as exc:  # this thread must outlive any outage
                log.warning("reaper cannot reach Redis or the broker: %s", exc)
            time.sleep(_REAP_EVERY)

    thread = threading.Thread(target=reap_forever, name="e2bq-reaper", daemon=True)
    thread.start()
    return thread
