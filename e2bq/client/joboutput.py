"""get_job_output: a page of a background job's whole stdout or stderr, as a toolkit result."""

from __future__ import annotations

from ..stores.jobs import JobStore
from ..stores.output import JobOutput
from ..types import TERMINAL_STATES, ErrorResult, JobOutputPage


def job_output_page(
    jobs: JobStore, output: JobOutput, job_id: object, stream: object, offset: object, limit: object
) -> JobOutputPage | ErrorResult:
    """The page of job ``job_id`` that ``stream``, ``offset`` and ``limit`` ask for (see
    ``JobOutput.read``); an ErrorResult when there is no such job or it has no output streams.

    The job's status is read before the page: a job's output is all written before its end is
    recorded, so an ended job means the page saw all there will be (a job cancelled by kill_job
    may still add what its worker gathered in its last quarter of a second). Only the job's kind
    and status are read, not its result (a command's result holds its whole output).
    """
    if not isinstance(job_id, str) or not job_id:
        return _no_job(job_id)
    brief = jobs.brief(job_id)
    if brief is not None and brief[1] == "running" and jobs.end_if_lost(job_id):
        brief = jobs.brief(job_id)  # its worker was lost: it ended just now
    if brief is None:
        return _no_job(job_id)
    kind, status = brief
    if kind == "map":
        message = f"job {job_id} is a batch map: it has no output stream; get_job_results has each item's"
        return {"status": "error", "job_id": job_id, "message": message}
    page = output.read(job_id, stream, offset, limit)
    return {
        "status": "success",
        "job_id": job_id,
        "stream": page.stream,
        "offset": page.offset,
        "next_offset": page.next_offset,
        "data": page.data,
        "size": page.size,
        "truncated": page.truncated,
        "complete": status in TERMINAL_STATES and page.next_offset == page.size,
    }


def _no_job(job_id: object) -> ErrorResult:
    message = f"no job {job_id!r}: its record expired (E2BQ_JOB_TTL) or it never existed"
    return {"status": "error", "job_id": str(job_id), "message": message}
