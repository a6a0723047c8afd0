"""Following a background job's output live, and the exit status a job ends with.

The output is read in pages from the byte offset already printed (``get_job_output``), stdout to
stdout and stderr to stderr. Between reads the follower blocks on the job event stream, so the
job's end wakes it at once; output has no event of its own, so it also reads again after
``OUTPUT_WAIT`` seconds, the most often a worker writes a job's output (every quarter of a second).
The stream's last id is taken before the output is read: an end that lands in between is an entry
after it, and wakes the next block at once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

import click

from ..client.waiting import next_event_of
from ..types import OUTPUT_STREAMS, OutputStream

if TYPE_CHECKING:
    from ..client.toolkit import E2BToolkit

OUTPUT_WAIT = 0.25  # seconds between reads of a running job's output, unless an event wakes it sooner
NOT_FOUND_EXIT = 2
CANCELLED_EXIT = 130  # as a shell reports a command ended by Ctrl-C


def exit_status(job: Mapping[str, object]) -> int:
    """The exit status a job's end stands for: a command's exit code; code that raised, or an error
    with no exit code: 1; cancelled: 130; no such job: 2; done (or still running): 0."""
    status = job.get("status")
    if status == "not_found":
        return NOT_FOUND_EXIT
    if status == "cancelled":
        return CANCELLED_EXIT
    result = job.get("result")
    code = result.get("exit_code") if isinstance(result, dict) else None
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    return 1 if status == "error" else 0


def follow_output(toolkit: E2BToolkit, job_id: str) -> str | None:
    """Print job ``job_id``'s output as it comes until the job ended and all of it is printed;
    None then, else why it cannot be followed (no such job, or a map, which has no output)."""
    offsets: dict[OutputStream, int] = dict.fromkeys(OUTPUT_STREAMS, 0)
    cursor = toolkit.events.last_id()
    while True:
        complete = True
        for stream in OUTPUT_STREAMS:
            page_complete, offset = _print_pages(toolkit, job_id, stream, offsets[stream])
            if offset < 0:
                return _why(toolkit, job_id)
            offsets[stream] = offset
            complete = complete and page_complete
        if complete:
            return None
        # an event of the job, or OUTPUT_WAIT, whichever comes first (other jobs' are read past)
        cursor = next_event_of(toolkit.events, job_id, cursor, time.monotonic() + OUTPUT_WAIT)


def _print_pages(toolkit: E2BToolkit, job_id: str, stream: OutputStream, offset: int) -> tuple[bool, int]:
    """Print ``stream`` from ``offset`` to its end so far: whether that was all of it (the job
    ended), and the offset reached (-1: the job's output cannot be read)."""
    while True:
        page = toolkit.get_job_output(job_id, stream, offset)
        if page["status"] != "success":
            return False, -1
        if page["data"]:
            click.echo(page["data"], nl=False, err=stream == "stderr")
        offset = page["next_offset"]
        if offset >= page["size"]:
            return page["complete"], offset


def _why(toolkit: E2BToolkit, job_id: str) -> str:
    page = toolkit.get_job_output(job_id, "stdout", 0, 4)
    return str(page.get("message") or f"the output of job {job_id} cannot be read")
