"""Job-end callbacks: what a background job's ``callback_url`` receives, and how it is signed.

When the job ends — done, error, cancelled by kill_job, or its worker lost — its final record
(what ``get_job_status`` returns then) is POSTed to the URL as JSON. The request carries::

    Content-Type: application/json
    X-E2BQ-Job-Id: <job id>
    X-E2BQ-Delivery: <job id>.end       the same on every attempt: deduplicate on it
    X-E2BQ-Attempt: <n>                  1 on the first attempt
    X-E2BQ-Timestamp: <unix seconds>     when this attempt was signed
    X-E2BQ-Signature: sha256=<hex>       HMAC-SHA256 with E2BQ_CALLBACK_SECRET over
                                         b"<timestamp>." + <the body's exact bytes>

The timestamp is signed with the body, so a receiver that refuses timestamps older than a few
minutes (:func:`verify`'s ``tolerance``) refuses replays. Any 2xx answer is a delivery; connection
errors, timeouts, 429 and 5xx are retried with exponential backoff (``E2BQ_CALLBACK_BACKOFF``
seconds, doubling, at most 60, within ``E2BQ_CALLBACK_ATTEMPTS`` attempts and
``E2BQ_CALLBACK_MAX_SECONDS`` from the first); any other answer gives up at once.

``on_done`` names a Celery task that gets the same final record as its one argument, sent by name
(``send_task``) to ``on_done_queue`` — Celery's default queue ``celery`` when it is not given.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

from .config import Settings
from .errors import ConfigurationError, InvalidInputError

SIGNATURE_HEADER: Final = "X-E2BQ-Signature"
TIMESTAMP_HEADER: Final = "X-E2BQ-Timestamp"
JOB_HEADER: Final = "X-E2BQ-Job-Id"
DELIVERY_HEADER: Final = "X-E2BQ-Delivery"
ATTEMPT_HEADER: Final = "X-E2BQ-Attempt"
DELIVER_JOB_END: Final = "e2bq.deliver_job_end"  # the workers' task that delivers a job's end
DEFAULT_ON_DONE_QUEUE: Final = "celery"  # Celery's own default queue, which a plain worker takes
_TASK_NAME = re.compile(r"^[A-Za-z_][\w.:-]{0,199}$")


def body(record: Mapping[str, object]) -> bytes:
    """The exact bytes POSTed for a final record (compact JSON, keys sorted)."""
    return json.dumps(record, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, timestamp: str, payload: bytes) -> str:
    """The hex HMAC-SHA256 of ``timestamp + "." + payload`` under ``secret``."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + payload, hashlib.sha256).hexdigest()


def headers(
    secret: str, job_id: str, payload: bytes, *, attempt: int, now: float | None = None
) -> dict[str, str]:
    """The headers of one delivery attempt of ``payload`` (see the module's docstring)."""
    timestamp = str(int(time.time() if now is None else now))
    return {
        "Content-Type": "application/json",
        JOB_HEADER: job_id,
        DELIVERY_HEADER: f"{job_id}.end",
        ATTEMPT_HEADER: str(attempt),
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: f"sha256={signature(secret, timestamp, payload)}",
    }


def verify(
    secret: str,
    payload: bytes,
    received: Mapping[str, str],
    *,
    tolerance: float = 300,
    now: float | None = None,
) -> bool:
    """True when ``received`` (a request's headers; names in any case) sign ``payload`` under
    ``secret`` with a timestamp at most ``tolerance`` seconds from ``now``: for receivers."""
    lower = {name.lower(): value for name, value in received.items()}
    timestamp = lower.get(TIMESTAMP_HEADER.lower(), "")
    signed = lower.get(SIGNATURE_HEADER.lower(), "")
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except ValueError:
        return False
    expected = f"sha256={signature(secret, timestamp, payload)}"
    return age <= tolerance and hmac.compare_digest(expected, signed)


def notify_fields(
    settings: Settings, callback_url: object, on_done: object, on_done_queue: object
) -> dict[str, str]:
    """The job record's fields for its end's delivery ({} when none was asked for); InvalidInputError
    or ConfigurationError says what to change."""
    fields: dict[str, str] = {}
    if callback_url is not None:
        if not isinstance(callback_url, str) or urlsplit(callback_url).scheme not in ("http", "https"):
            raise InvalidInputError(f"callback_url must be an http:// or https:// URL, not {callback_url!r}")
        if not urlsplit(callback_url).hostname:
            raise InvalidInputError(f"callback_url {callback_url!r} names no host")
        if not settings.callback_secret:
            raise ConfigurationError(
                "callback_url needs a signing key: set E2BQ_CALLBACK_SECRET (the same value in clients "
                "and workers) so that the receiver can check each callback's X-E2BQ-Signature"
            )
        fields["callback_url"] = callback_url
    if on_done_queue is not None and on_done is None:
        raise InvalidInputError("on_done_queue needs on_done: the name of the task to send")
    if on_done is not None:
        if not isinstance(on_done, str) or not _TASK_NAME.match(on_done):
            raise InvalidInputError(
                f"on_done must be a Celery task name such as 'myapp.tasks.done', not {on_done!r}"
            )
        if on_done_queue is not None and (not isinstance(on_done_queue, str) or not on_done_queue.strip()):
            raise InvalidInputError(f"on_done_queue must be a queue name, not {on_done_queue!r}")
        fields["on_done"] = on_done
        fields["on_done_queue"] = on_done_queue or DEFAULT_ON_DONE_QUEUE
    return fields


def backoff(settings: Settings, attempts: int) -> float:
    """Seconds to wait after ``attempts`` failed attempts: the backoff doubling each time, 60 at most."""
    return float(min(60.0, settings.callback_backoff * 2 ** max(0, attempts - 1)))
