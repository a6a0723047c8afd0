"""The Celery queues, by name: where each call goes, and what each worker takes.

A cluster is named by its base queue (``E2BQ_QUEUE``, ``e2bq``). Every call for a sandbox goes to
the queue of the sandbox's node, so only the workers that reach that node's sandbox host take it;
calls with no node (E2B's cloud, where any worker reaches any sandbox) go to the shared queue.
Each of these has a batch twin for background jobs::

    e2bq                  shared, interactive: calls with no node (E2B's cloud)
    e2bq.batch            shared, background jobs
    e2bq.node.<name>      node <name>, interactive: synchronous calls, kill_job, creates placed there
    e2bq.node.<name>.batch    node <name>, background jobs and batch-map lanes

A worker takes from its interactive queues first (kombu's ``priority`` queue order), so a
synchronous call never waits *behind* a backlog of background jobs. But a job holds its worker
thread while it runs: a worker whose every thread runs a long job takes nothing else until one
ends. A node that must answer at once under any batch load runs its workers split by what they
serve (``E2BQ_WORKER_SERVES``): ``interactive`` workers keep their threads for synchronous calls,
``batch`` workers run the jobs.
"""

from __future__ import annotations

import re
from typing import Literal, get_args

from .errors import ConfigurationError

Serves = Literal["all", "interactive", "batch"]
SERVES: tuple[str, ...] = get_args(Serves)

_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def check_node_name(name: str) -> str:
    """``name`` if it can name a node (and its queues); else ConfigurationError saying why."""
    if not _NODE_NAME.match(name):
        raise ConfigurationError(
            f"node name {name!r} is not usable: use 1-63 letters, digits, '.', '_' or '-' "
            "(set E2BQ_NODE or `e2bq worker --node NAME`)"
        )
    return name


def queue_for(base: str, node: str | None, *, batch: bool = False) -> str:
    """The queue of a call to a sandbox on ``node`` (None: the shared queue)."""
    queue = base if node is None else f"{base}.node.{node}"
    return f"{queue}.batch" if batch else queue


def worker_queues(base: str, node: str | None, serves: Serves = "all") -> list[str]:
    """What a worker serving ``node`` (None: E2B's cloud) takes, in the order it looks at them:
    interactive calls, background jobs, or both (interactive first)."""
    interactive = [base] if node is None else [base, queue_for(base, node)]
    batch = [f"{queue}.batch" for queue in interactive]
    return {"all": interactive + batch, "interactive": interactive, "batch": batch}[serves]
