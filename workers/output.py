"""A job's output on its way to the job store: gathered as the SDK delivers it, written in batches.

The SDK calls back on its loop for every line of output; a Redis write there would hold that loop
(every task's SDK calls in this process) for a round trip per line. The lines are gathered here
instead and written from the task's own thread: by its watch while the job runs (every quarter of
a second at most, see ``workers.watch``), and once more before the job's end is recorded, so an
ended job's record holds its whole output tail.
"""

from __future__ import annotations

import threading

from e2bq.stores.jobs import JobStore


class OutputTail:
    def __init__(self, jobs: JobStore, job_id: str) -> None:
        self.jobs, self.job_id = jobs, job_id
        self._lock = threading.Lock()  # add() runs on the SDK loop, flush() on the task's thread
        self._pending: list[str] = []

    def add(self, text: str) -> None:
        with self._lock:
            self._pending.append(text)

    def flush(self) -> None:
        """Write what was gathered since the last flush, in one round trip (none if nothing was)."""
        with self._lock:
            text, self._pending = "".join(self._pending), []
        if text:
            self.jobs.append_output(self.job_id, text)
