"""The Redis layout e2bq keeps beside Celery's own keys, and the one way to connect to it.

e2bq:sandbox:<id>           hash   a managed sandbox (SandboxEntry fields, JSON values)
e2bq:ns:<ns>:sandboxes      set    ids of the sandboxes a namespace manages
e2bq:ns:<ns>:default        string the namespace's default sandbox id
e2bq:job:<id>               hash   a job (JobRecord fields, JSON values)
e2bq:job:<id>:output        string the bounded tail of a job's output
e2bq:job:<id>:cancel        string set when kill_job was called
e2bq:job:<id>:alive         string a started job's heartbeat, renewed by its worker
e2bq:jobs:started           set    ids of started jobs, which worker reapers watch
e2bq:jobs:orphaned          set    ids of jobs ended as "worker lost" whose work a reaper must stop
e2bq:transfer:<id>          list   file chunks in flight between a client and a worker
e2bq:cancel                 pubsub where cancels are announced to the workers
"""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from ..config import Settings
from ..errors import QueueError

CANCEL_CHANNEL = "e2bq:cancel"


def sandbox_key(sandbox_id: str) -> str:
    return f"e2bq:sandbox:{sandbox_id}"


def namespace_key(namespace: str, what: str) -> str:
    return f"e2bq:ns:{namespace}:{what}"


def job_key(job_id: str, what: str | None = None) -> str:
    return f"e2bq:job:{job_id}" + (f":{what}" if what else "")


def transfer_key(transfer_id: str) -> str:
    return f"e2bq:transfer:{transfer_id}"


def _options() -> dict[str, Any]:
    """Ride out a Redis restart: reconnect and retry a command for about 10 s before failing."""
    return {
        "socket_connect_timeout": 5,
        "health_check_interval": 30,
        "retry": Retry(ExponentialBackoff(cap=2, base=0.1), retries=8),
        "retry_on_error": [redis.ConnectionError, redis.TimeoutError],
    }


def text(reply: bytes | str) -> str:
    """A reply of the decoding client as ``str``: redis-py types every reply ``bytes | str``."""
    return reply.decode() if isinstance(reply, bytes) else reply


def connect(settings: Settings) -> redis.Redis:
    """A Redis client for e2bq's own keys (strings in, strings out)."""
    try:
        return redis.Redis.from_url(settings.redis_url, decode_responses=True, **_options())
    except ValueError as exc:
        raise QueueError(f"E2BQ_REDIS_URL {settings.redis_url!r} is not a Redis URL: {exc}") from exc


def binary(settings: Settings) -> redis.Redis:
    """A Redis client for raw bytes (file chunks)."""
    return redis.Redis.from_url(settings.redis_url, **_options())
