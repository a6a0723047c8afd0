"""A job's output on its way to Redis: gathered as the SDK delivers it, written in batches.

The SDK calls back on its loop for every line of output; a Redis write there would hold that loop
(every task's SDK calls in this process) for a round trip per line. The lines are gathered here
instead and written from the task's own thread: by its watch while the job runs (every quarter of
a second at most, see ``workers.watch``), and once more before the job's end is recorded, so an
ended job's output is all in Redis. A flush writes the job's short tail (both streams in the order
they came) and its whole stdout and stderr (``e2bq.stores.output``) in one round trip.
"""

from __future__ import annotations

import threading

from e2bq.stores.jobs import JobStore
from e2bq.stores.output import JobOutput
from e2bq.types import OutputStream


class OutputTail:
    def __init__(self, jobs: JobStore, job_id: str) -> None:
        self.output, self.job_id = JobOutput(jobs.settings, jobs.redis), job_id
        self._lock = threading.Lock()  # add() runs on the SDK loop, flush() on the task's thread
        self._pending: list[tuple[OutputStream, str]] = []
        self._skip: dict[OutputStream, int] = {}  # bytes of each stream to drop as they come again

    def add(self, text: str, stream: OutputStream = "stdout") -> None:
        with self._lock:
            if self._skip.get(stream):
                text = self._skipped(text, stream)
            if text:
                self._pending.append((stream, text))

    def skip_written(self) -> None:
        """Drop, as it comes again, the output the job's output already holds: a job taken over
        re-attaches to work that gives its output again from the start (a keyed execution), and
        its lost worker wrote the first part of it."""
        sizes = self.output.sizes(self.job_id)
        with self._lock:
            self._skip = dict(sizes)

    def _skipped(self, text: str, stream: OutputStream) -> str:
        data, left = text.encode(), self._skip[stream]
        self._skip[stream] = max(0, left - len(data))
        return data[left:].decode(errors="ignore") if len(data) > left else ""

    def flush(self) -> None:
        """Write what was gathered since the last flush, in one round trip (none if nothing was)."""
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return
        tail = "".join(text for _, text in pending)
        stdout = "".join(text for stream, text in pending if stream == "stdout")
        stderr = "".join(text for stream, text in pending if stream == "stderr")
        self.output.write(self.job_id, tail=tail, stdout=stdout, stderr=stderr)
