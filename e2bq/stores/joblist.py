"""A namespace's jobs, newest first: the index the job store keeps beside the records.

Every job's create adds its id to ``e2bq:ns:<namespace>:jobs`` (a sorted set scored by
``created_at``, in the same script as the record) and drops the ids older than ``E2BQ_JOB_TTL``,
whose records have expired. A listing reads the index newest first, in batches, and the few fields
of each record a listing shows — never a job's ``result``, which for a command holds its whole
output. An id whose record expired before the index dropped it is skipped.

A listing reads; it never changes a job (a job whose worker was lost shows ``running`` here until
a reader of that job, or a reaper, ends it).
"""

from __future__ import annotations

import json
from typing import Any, Final, cast, get_args

from ..errors import InvalidInputError
from ..types import JobFilter, JobSummary
from .connection import text, translates_errors
from .jobs import JobStore
from .keys import job_key, namespace_jobs_key

JOB_FILTERS: Final[tuple[str, ...]] = get_args(JobFilter)
DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 1000
_BATCH = 200  # ids read from the index per round trip


_FIELDS: Final = tuple(JobSummary.__annotations__)


def check_filter(state: object) -> JobFilter | None:
    """``state`` as a listing filter; InvalidInputError naming the accepted values otherwise."""
    if state is None or (isinstance(state, str) and state in JOB_FILTERS):
        return cast("JobFilter | None", state)
    raise InvalidInputError(f"state must be one of {', '.join(JOB_FILTERS)} (or omitted), not {state!r:.80}")


def check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {limit!r:.80}")
    return limit


@translates_errors
def list_jobs(
    jobs: JobStore, namespace: str, state: str | None = None, limit: int = DEFAULT_LIMIT
) -> list[JobSummary]:
    """The newest ``limit`` jobs of ``namespace`` (newest first) whose status, or whose state
    detail for ``queued``, ``started`` and ``handed_over``, is ``state`` (None: every job).

    Raises InvalidInputError for a ``state`` or ``limit`` outside those accepted (``limit`` is
    1 to ``MAX_LIMIT``), and e2bq's errors for Redis' (see ``translates_errors``).
    """
    wanted = check_filter(state)
    limit = check_limit(limit)
    index = namespace_jobs_key(namespace)
    found: list[JobSummary] = []
    start = 0
    while len(found) < limit:
        page = cast("list[str | bytes]", jobs.redis.zrevrange(index, start, start + _BATCH - 1))
        ids = [text(raw) for raw in page]
        if not ids:
            break
        start += len(ids)
        pipe = jobs.redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(job_key(job_id), list(_FIELDS))
        for values in pipe.execute():
            summary = _summary(values)
            if summary is not None and _matches(summary, wanted):
                found.append(summary)
                if len(found) == limit:
                    break
    return found


def _summary(values: list[Any]) -> JobSummary | None:
    """A record's listed fields (HMGET's values, JSON), or None when the record expired."""
    fields = dict(zip(_FIELDS, values, strict=True))
    if fields["status"] is None or fields["job_id"] is None:
        return None
    decoded = {name: None if raw is None else json.loads(raw) for name, raw in fields.items()}
    decoded["message"] = decoded["message"] or ""
    return cast(JobSummary, decoded)


def _matches(summary: JobSummary, wanted: JobFilter | None) -> bool:
    if wanted is None:
        return True
    if wanted in ("queued", "started", "handed_over"):
        return summary["status"] == "running" and summary["state"] == wanted
    return summary["status"] == wanted
