"""The job tools: a background job's status, results, output and end; stopping it."""

from __future__ import annotations

from ..protocol import CANCEL_JOB, CancelJobArgs
from ..stores.joblist import DEFAULT_LIMIT, list_jobs
from ..stores.output import DEFAULT_PAGE_BYTES
from ..types import (
    ErrorResult,
    JobFilter,
    JobListResult,
    JobNotFoundResult,
    JobOutputPage,
    JobRecord,
    KillResult,
    MapResults,
    OutputStream,
)
from .calls import tool
from .compat import job_with_output
from .core import ToolkitCore
from .inputs import check_id, check_seconds
from .joboutput import job_output_page
from .waiting import wait_for_end


class JobTools(ToolkitCore):
    @tool
    def get_job_status(self, job_id: str) -> JobRecord | JobNotFoundResult:
        """A background job's status: running (queued or started), done, error, cancelled or not_found;
        a map job's record also counts its items: total, done (succeeded) and failed."""
        record = self._job(job_id)
        if record is None:
            return {"status": "not_found", "job_id": str(job_id), "message": f"no job {job_id!r}"}
        return self.maps.with_progress(record) if record["kind"] == "map" else job_with_output(record)

    @tool
    def list_jobs(self, state: JobFilter | None = None, limit: int = DEFAULT_LIMIT) -> JobListResult:
        """This namespace's background jobs, newest first (at most limit, up to 1000), without
        their results; state keeps only those with that status (running, done, error,
        cancelled) or, among running ones, that state (queued, started, handed_over)."""
        namespace = self.manager.namespace
        jobs = list_jobs(self.jobs, namespace, state, limit)
        return {"status": "success", "namespace": namespace, "jobs": jobs, "count": len(jobs)}

    @tool
    def get_job_results(self, job_id: str, offset: int = 0, limit: int = 100) -> MapResults | ErrorResult:
        """A map job's per-item results from offset on (at most limit), in input order; an item not
        finished yet reads {"status": "running", "index": i}."""
        record = self._job(job_id)
        if record is None:
            return {"status": "error", "job_id": str(job_id), "message": f"no job {job_id!r}"}
        return self.maps.results(record, offset, limit)

    @tool
    def get_job_output(
        self, job_id: str, stream: OutputStream = "stdout", offset: int = 0, limit: int = DEFAULT_PAGE_BYTES
    ) -> JobOutputPage | ErrorResult:
        """A page of a background job's whole stdout or stderr, while it runs and after it ended:
        at most limit bytes from byte offset on (of its UTF-8; a page never splits a character).
        Read on from next_offset; complete says the job ended and the page reached the stream's
        end. Past E2BQ_JOB_OUTPUT_MAX_BYTES (64 MiB over both streams) the output is cut:
        truncated is true and a marker line in the stream says so."""
        return job_output_page(self.jobs, self.output, job_id, stream, offset, limit)

    @tool
    def kill_job(self, job_id: str) -> KillResult | ErrorResult:
        """Cancel a background job: a queued job never runs; a running one's work is stopped.

        status: cancelled (killed_proc: its work had started and is stopped), not_cancelled (it
        had already ended) or not_found."""
        record = self._job(job_id)
        if record is None:
            missing = f"no job {job_id!r}"
            return {"status": "not_found", "job_id": str(job_id), "killed_proc": False, "message": missing}
        if not self.jobs.cancel(job_id):
            return {
                "status": "not_cancelled",
                "job_id": job_id,
                "killed_proc": False,
                "message": f"job {job_id} already ended ({record['status']})",
            }
        self.dispatcher.revoke(job_id)
        started = record["state"] != "queued"
        if record["kind"] != "map":  # a map's lanes watch the flag: they stop and kill their sandboxes
            route = self.manager.router.to_node(record.get("node"))
            self.dispatcher.submit(CANCEL_JOB, CancelJobArgs(job_id=job_id), route=route)
        return {"status": "cancelled", "job_id": job_id, "killed_proc": started, "result": "cancelled"}

    @tool
    def wait_job(self, job_id: str, timeout: float | None = None) -> JobRecord | ErrorResult:
        """Wait until a background job ends (at most timeout seconds; None: no bound) and return its
        status as get_job_status does.

        Woken by the job's end, not by polling. A job still running at the timeout comes back as it
        stands, with "timed_out": true and a message saying so. A job whose worker died is taken
        over by another worker and the wait goes on; with no worker left to take it over it ends
        "error" (its node lost, or E2BQ_TAKEOVER_WAIT passed).
        """
        check_id(job_id, "job_id")
        if timeout is not None:
            check_seconds(timeout, "timeout", zero=True)
        record, timed_out = wait_for_end(self.jobs, self.events, job_id, timeout)
        if record is None:
            return {"status": "error", "job_id": job_id, "message": f"no job {job_id!r}"}
        record = self.maps.with_progress(record) if record["kind"] == "map" else job_with_output(record)
        if timed_out:
            record["timed_out"] = True
            record["message"] = f"still running after {timeout or 0:g} s"
        return record
