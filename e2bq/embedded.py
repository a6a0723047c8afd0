"""The embedded default: a private Redis, local sandbox hosts, workers and Flower on this machine.

``e2bq up`` runs it, and so do the queue benchmarks. Every process is a child started through
``e2bq.launch``, on a free loopback port (Flower's aside), and stopped by PID when the ``with`` block
ends. Clients need only ``E2BQ_REDIS_URL``; the workers also get their sandbox host's address and
key, and their node's name: ``node1`` ... ``nodeN``, one sandboxd and its workers each.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .launch import (
    FlowerProcess,
    RedisProcess,
    SandboxHostProcess,
    WorkerProcess,
    start_flower,
    start_redis,
    start_sandboxd,
    start_worker,
)
from .queues import Serves

EMBEDDED_WARM_POOL = 2  # sandboxes the embedded host launches ahead of creates, unless told otherwise


@dataclass
class Stack:
    """The running processes of the embedded default, and the environment that reaches them.

    Attributes:
        workdir: the folder of every process's log (kept after the stack has stopped).
        env: what a client or worker of the stack needs: ``E2BQ_REDIS_URL`` and the ``E2B_*``
            variables that point the e2b SDK at the sandbox host.
        host: the first node's sandbox host.
        hosts: every node's sandbox host, ``node1`` first.
        redis: the private Redis, or None when the stack uses a Redis given by URL.
        processes: stops every process of the stack, the latest started first, when closed
            (:func:`embedded` closes it as its ``with`` block ends).
        workers: the workers in the order they were started (those that have died included).
        flower: Flower, or None.
    """

    workdir: Path
    env: dict[str, str]
    host: SandboxHostProcess
    redis: RedisProcess | None
    processes: contextlib.ExitStack
    hosts: list[SandboxHostProcess] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)
    flower: FlowerProcess | None = None

    def node_env(self, node: int = 1) -> dict[str, str]:
        """The environment of a worker of node ``node`` (1-based): its host and its node's name."""
        return {**self.env, **self.hosts[node - 1].env, "E2BQ_NODE": f"node{node}"}

    def add_worker(
        self, *args: str, name: str | None = None, node: int = 1, serves: Serves = "all"
    ) -> WorkerProcess:
        """Start one more ``e2bq worker`` for node ``node`` (1-based), taking what ``serves`` says,
        and return once it is ready; it is stopped with the stack. ``args`` are Celery worker
        options; ``name`` (its Celery node and log name) defaults to ``worker<N>``, N counting the
        stack's workers. Raises ConfigurationError when it does not come up."""
        env = {**self.node_env(node), "E2BQ_WORKER_SERVES": serves}
        name = name or f"worker{len(self.workers) + 1}"
        running = start_worker(self.workdir, *args, name=name, env=env)
        self.processes.enter_context(running)
        self.workers.append(running)
        return running


@contextlib.contextmanager
def embedded(
    *,
    redis_url: str | None = None,
    workers: int = 1,
    nodes: int = 1,
    batch_workers: int = 0,
    worker_args: tuple[str, ...] = (),
    flower_port: int | None = None,
    warm_pool: int | None = None,
    workdir: Path | None = None,
) -> Iterator[Stack]:
    """Start the embedded default and yield it once every process is ready; stop them all on exit.

    A private redis-server is started unless ``redis_url`` names a Redis to use. ``nodes`` sandbox
    hosts each keep ``warm_pool`` sandboxes launched ahead of creates (``EMBEDDED_WARM_POOL`` when
    None), and each gets ``workers`` workers, started with the Celery options ``worker_args``; with
    ``batch_workers`` > 0, those take interactive calls only and each node gets that many more
    workers for background jobs (see ``e2bq.queues``). Then Flower on ``flower_port`` when one is
    given. Logs go to ``workdir`` (a new temporary folder by
    default).

    Raises ConfigurationError when a process does not come up; those already started are stopped.
    """
    folder = workdir or Path(tempfile.mkdtemp(prefix="e2bq-up-"))
    pool = EMBEDDED_WARM_POOL if warm_pool is None else warm_pool
    with contextlib.ExitStack() as processes:
        server = None
        if redis_url is None:
            server = processes.enter_context(start_redis(folder))
            redis_url = server.url
        hosts = [
            processes.enter_context(start_sandboxd(folder, "--warm-pool", str(pool)))
            for _ in range(nodes)
        ]
        stack = Stack(
            workdir=folder,
            env={"E2BQ_REDIS_URL": redis_url, **hosts[0].env},
            host=hosts[0],
            hosts=hosts,
            redis=server,
            processes=processes,
        )
        for node in range(1, nodes + 1):
            for _ in range(workers):
                stack.add_worker(*worker_args, node=node, serves="interactive" if batch_workers else "all")
            for _ in range(batch_workers):
                stack.add_worker(*worker_args, node=node, serves="batch")
        if flower_port is not None:
            stack.flower = processes.enter_context(start_flower(folder, port=flower_port, env=stack.env))
        yield stack
