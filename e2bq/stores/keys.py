"""Every Redis key e2bq keeps beside Celery's own, in one place.

    e2bq:sandbox:<id>                 hash    a managed sandbox (SandboxEntry fields, JSON values)
    e2bq:ns:<ns>:sandboxes            set     ids of the sandboxes a namespace manages
    e2bq:ns:<ns>:default              string  the namespace's default sandbox id
    e2bq:ns:<ns>:jobs                 zset    ids of the namespace's jobs, scored by created_at; members
                                              older than E2BQ_JOB_TTL are dropped at each create
    e2bq:job:<id>                     hash    a job (JobRecord fields, JSON values)
    e2bq:job:<id>:output              string  the bounded tail of a job's output
    e2bq:job:<id>:stdout              string  a job's whole stdout, up to the output cap (UTF-8)
    e2bq:job:<id>:stderr              string  its whole stderr, the same way
    e2bq:job:<id>:streams             hash    bytes kept over both streams, and where the cap cut
    e2bq:job:<id>:cancel              string  set when kill_job was called
    e2bq:job:<id>:alive               string  a taken job's heartbeat, renewed by its worker
    e2bq:jobs:started                 set     ids of taken or started jobs, which worker reapers watch
    e2bq:jobs:orphaned                set     ids of jobs ended as "worker lost" whose work a reaper must stop
    e2bq:events                       stream  every job's transitions (queued, started, ended, cancelled)
    e2bq:outbox                       zset    ids of ended jobs whose callback or on_done task is due,
                                              scored by when the next delivery attempt is due
    e2bq:outbox:wake                  list    wakes the workers' outbox drainers at a job's end
    e2bq:job:<id>:delivery            hash    a job end's delivery: attempts, first try, outcome
    e2bq:map:<id>                     hash    a batch map's counts (total, done, failed, lanes still
                                              running; integers), its expiry, its lane tasks' claims,
                                              and why a lane stopped
    e2bq:map:<id>:items               list    the items' code, in input order
    e2bq:map:<id>:todo                list    indices of the items no lane has taken, next first
    e2bq:map:<id>:leases              hash    index -> the lane task running that item
    e2bq:map:<id>:attempts            hash    index -> how often the item's sandbox or lane was lost under it
    e2bq:map:<id>:results             hash    index -> the item's result (CodeResult or ErrorResult, JSON)
    e2bq:map:<id>:group:<n>:alive     string  lane task <n>'s heartbeat
    e2bq:transfer:<id>                list    file chunks in flight between a client and a worker
    e2bq:transfer:<id>:error          string  why a transfer broke off
    e2bq:shape:<provider>:bucket      hash    the creation rate's token bucket
    e2bq:shape:<provider>:live        zset    live sandboxes and pending creates, scored by expiry
    e2bq:worker:<name>:stopping       string  when a shutting-down worker stops its running work
    e2bq:snapshots                    hash    snapshot id -> where it lives (SnapshotInfo, JSON), for the
                                              snapshots taken through e2bq
    e2bq:cluster:<queue>:nodes        hash    node name -> its last heartbeat (NodeRecord, JSON)
    e2bq:cluster:<queue>:node:<name>:pending  zset  creates placed on the node, scored by expiry
    e2bq:cluster:<queue>:node:<name>:settled  zset  creates done since, not yet in a heartbeat

The layout is stable across releases: workers and clients of adjacent versions share it.
"""

from __future__ import annotations

from typing import Final

STARTED_JOBS: Final = "e2bq:jobs:started"
ORPHANED_JOBS: Final = "e2bq:jobs:orphaned"
EVENTS: Final = "e2bq:events"
OUTBOX: Final = "e2bq:outbox"
OUTBOX_WAKE: Final = "e2bq:outbox:wake"
SNAPSHOTS: Final = "e2bq:snapshots"


def sandbox_key(sandbox_id: str) -> str:
    return f"e2bq:sandbox:{sandbox_id}"


def namespace_sandboxes_key(namespace: str) -> str:
    return f"e2bq:ns:{namespace}:sandboxes"


def namespace_default_key(namespace: str) -> str:
    return f"e2bq:ns:{namespace}:default"


def namespace_jobs_key(namespace: str) -> str:
    """The namespace's jobs, newest last by score (see ``e2bq.stores.joblist``)."""
    return f"e2bq:ns:{namespace}:jobs"


def job_key(job_id: str) -> str:
    return f"e2bq:job:{job_id}"


def job_output_key(job_id: str) -> str:
    return f"e2bq:job:{job_id}:output"


def job_args_key(job_id: str) -> str:
    """The arguments of a job's task, kept to send it again when its worker is lost."""
    return f"e2bq:job:{job_id}:args"


def job_stream_key(job_id: str, stream: str) -> str:
    """A job's whole ``stdout`` or ``stderr``."""
    return f"e2bq:job:{job_id}:{stream}"


def job_streams_key(job_id: str) -> str:
    return f"e2bq:job:{job_id}:streams"


def job_cancel_key(job_id: str) -> str:
    return f"e2bq:job:{job_id}:cancel"


def job_alive_key(job_id: str) -> str:
    return f"e2bq:job:{job_id}:alive"


def job_delivery_key(job_id: str) -> str:
    return f"e2bq:job:{job_id}:delivery"


def map_key(job_id: str, part: str = "") -> str:
    """A batch map's hash (``part`` empty) or one of its parts: ``items``, ``todo``, ``leases``,
    ``attempts``, ``results``."""
    return f"e2bq:map:{job_id}:{part}" if part else f"e2bq:map:{job_id}"


def map_alive_prefix(job_id: str) -> str:
    """The start of a map's lane-task heartbeats: ``<prefix><n>:alive``."""
    return f"e2bq:map:{job_id}:group:"


def transfer_key(transfer_id: str) -> str:
    return f"e2bq:transfer:{transfer_id}"


def transfer_error_key(transfer_id: str) -> str:
    return f"e2bq:transfer:{transfer_id}:error"


def shape_bucket_key(provider: str) -> str:
    return f"e2bq:shape:{provider}:bucket"


def shape_live_key(provider: str) -> str:
    return f"e2bq:shape:{provider}:live"


def worker_stopping_key(worker: str) -> str:
    return f"e2bq:worker:{worker}:stopping"


def cluster_nodes_key(queue: str) -> str:
    return f"e2bq:cluster:{queue}:nodes"


def cluster_node_prefix(queue: str) -> str:
    """The start of a node's placement keys: ``<prefix><name>:pending`` and ``<prefix><name>:settled``."""
    return f"e2bq:cluster:{queue}:node:"
