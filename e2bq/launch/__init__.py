"""Starting e2bq's local processes: a private Redis (or one that fails over, behind Sentinels), a
sandbox host, workers and Flower.

Every ``start_*`` function starts one child process on a loopback port (a free one unless given),
appends its output to a log file of its own, waits with a deadline until it is ready, and returns a
:class:`Process` that stops it by PID (SIGTERM, then SIGKILL after a grace period) when its
``with`` block ends or its ``stop()`` is called. A process that never comes up is stopped before
:class:`~e2bq.errors.ConfigurationError` is raised. ``e2bq up`` (``e2bq.embedded``), the tests and
the benchmarks all start processes through this package.

    with start_redis(folder) as server, start_sandboxd(folder) as host:
        env = {"E2BQ_REDIS_URL": server.url, **host.env}
        with start_worker(folder, env=env):
            ...
"""

from __future__ import annotations

from .flower import FlowerProcess, start_flower
from .process import Process, free_port, stop
from .redis_server import RedisProcess, start_redis
from .sandboxd import SandboxHostProcess, start_sandboxd, unmount_under
from .sentinel import SentinelCluster, SentinelProcess, start_sentinel_cluster
from .worker import WorkerProcess, start_worker

__all__ = [
    "FlowerProcess",
    "Process",
    "RedisProcess",
    "SandboxHostProcess",
    "SentinelCluster",
    "SentinelProcess",
    "WorkerProcess",
    "free_port",
    "start_flower",
    "start_redis",
    "start_sandboxd",
    "start_sentinel_cluster",
    "start_worker",
    "stop",
    "unmount_under",
]
