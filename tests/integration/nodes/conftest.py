"""Nodes on one machine: each a real ``e2bq sandboxd`` on a port of its own and an ``e2bq worker``
serving it (``E2BQ_NODE=nodeN``), all sharing one private redis-server.

A :class:`Cluster` starts, kills (SIGKILL, as a lost machine would die) and restarts nodes; every
process it started is stopped by PID in its finalizer. Clients get only Redis, the queue, the
namespace and the hosts' shared API key: no host's address, so whatever reaches a sandbox does so
through its node (``SandboxSlot.sandbox`` through the ``node_url`` the registry holds). The
unmodified e2b SDK pointed at one host at a time (:meth:`Cluster.hosted`, :meth:`Cluster.sdk`) is
how a test sees which host a sandbox lives on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2b_code_interpreter import Sandbox

from e2bq import E2BToolkit, SandboxManager, Settings
from e2bq.stores.nodes import NodeStore
from tests.integration.faults.conftest import descendants
from tests.procs import (
    API_KEY,
    SandboxHostProcess,
    WorkerProcess,
    free_port,
    redis_server,
    sandbox_host,
    start_worker,
    wait_for,
)

NODES = ("node1", "node2", "node3")
# Seconds without a heartbeat before a node is lost, in clusters whose tests kill nodes. Workers beat
# every 2 s and a node's heartbeat was measured at most ~2.05 s old during bursts of creates: this
# leaves a busy machine two seconds more. Clusters that lose no node keep the default (15 s).
FAST_NODE_TIMEOUT = 4.0
# Seconds beyond the node timeout that a call to a lost node's sandbox may take, at most: generous on
# a loaded machine, and far below the calls' own timeouts (300 s), which it proves are not waited out.
SLACK = 10.0


@dataclass
class Node:
    """One node: its sandbox host (``port`` survives restarts) and the worker serving it."""

    name: str
    port: int
    host_args: tuple[str, ...]
    host: SandboxHostProcess
    worker: WorkerProcess

    @property
    def url(self) -> str:
        return self.host.url


@dataclass
class Cluster:
    """Nodes sharing one Redis, a queue and a namespace of their own."""

    tmp: Path
    env: dict[str, str]  # a client's environment (no sandbox host in it)
    cleanup: contextlib.ExitStack
    store: NodeStore  # the nodes' heartbeats, as clients read them
    nodes: dict[str, Node] = field(default_factory=dict)

    @property
    def node_timeout(self) -> float:
        return self.settings().node_timeout

    def start_node(self, name: str, *host_args: str, port: int | None = None) -> Node:
        """Start node ``name``: a sandboxd (options ``host_args``, on ``port`` or a free one) and one
        worker serving it; return once the node is live."""
        return self.start_nodes({name: host_args}, port=port)[name]

    def start_nodes(self, nodes: dict[str, tuple[str, ...]], *, port: int | None = None) -> dict[str, Node]:
        """Start ``nodes`` (name: sandboxd options) at once, their workers coming up in parallel;
        return once every one is live. ``port``: the port of the only node (to restart one)."""
        hosts = {}
        for name, host_args in nodes.items():
            folder = self.tmp / f"{name}-{uuid.uuid4().hex[:6]}"
            folder.mkdir()
            host = sandbox_host(folder, *host_args, port=port or free_port())
            hosts[name] = self.cleanup.enter_context(host)

        def serve(name: str) -> WorkerProcess:
            env = {**self.env, **hosts[name].env, "E2BQ_NODE": name}
            return start_worker(hosts[name].log.parent, env, name=f"{name}-worker")

        with ThreadPoolExecutor(len(nodes)) as pool:
            starting = {name: pool.submit(serve, name) for name in nodes}
        for future in starting.values():  # stopped with the cluster, even if another failed to start
            if future.exception() is None:
                self.cleanup.enter_context(future.result())
        for name, future in starting.items():
            host = hosts[name]
            self.nodes[name] = Node(name, host.port, nodes[name], host, future.result())
        for name in nodes:
            self.wait_state(name, "live", 30)
        return {name: self.nodes[name] for name in nodes}

    def kill_node(self, name: str) -> None:
        """SIGKILL the node's sandboxd (with every jail and kernel below it) and its worker."""
        node = self.nodes[name]
        roots = [node.host.proc, node.worker.proc]
        family = [pid for proc in roots for pid in (proc.pid, *descendants(proc.pid))]
        for pid in family:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for proc in roots:
            proc.wait()
        node.host.stop()  # unmounts what the dead host left mounted and removes its state folder

    def restart_node(self, name: str) -> Node:
        """Start a killed node again: its sandboxd on the same port with the same key, a new worker."""
        node = self.nodes[name]
        return self.start_node(name, *node.host_args, port=node.port)

    def state(self, name: str) -> str | None:
        """``live`` or ``lost`` as the cluster's Redis says, None if it never beat."""
        info = self.store.get(name)
        return None if info is None else info["state"]

    def wait_state(self, name: str, state: str, timeout: float) -> None:
        """Wait until node ``name`` is ``state`` (live or lost), at most ``timeout`` seconds."""
        wait_for(lambda: self.state(name) == state, timeout, f"{name} to be {state}")

    def settings(self, **overrides: Any) -> Settings:
        return Settings.from_env(self.env, **overrides)

    def manager(self, **kwargs: Any) -> SandboxManager:
        return SandboxManager(settings=self.settings(), **kwargs)

    def toolkit(self, **kwargs: Any) -> E2BToolkit:
        """A client of the cluster, with no default sandbox."""
        return E2BToolkit(self.manager(**kwargs), auto_create_default=False)

    # -- the unmodified SDK, pointed at one node's host ------------------------------------------

    def sdk_options(self, name: str) -> dict[str, str]:
        url = self.nodes[name].url
        return {"api_key": API_KEY, "api_url": url, "sandbox_url": url}

    def hosted(self, name: str) -> set[str]:
        """The ids of the sandboxes running on node ``name``'s host, as its control plane lists them."""
        paginator = Sandbox.list(**self.sdk_options(name))
        ids: set[str] = set()
        while paginator.has_next:
            ids |= {info.sandbox_id for info in paginator.next_items()}
        return ids

    def sdk(self, name: str, sandbox_id: str) -> Sandbox:
        """The sandbox, connected through node ``name``'s host alone."""
        return Sandbox.connect(sandbox_id, **self.sdk_options(name))

    def refused_creates(self, name: str) -> float:
        """Creates node ``name``'s host refused for want of room (its metrics; 0 when none)."""
        metrics = httpx.get(self.nodes[name].url + "/metrics", timeout=10).text
        refused = 'e2bq_sandboxd_create_failures_total{reason="cap"}'
        return sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(refused))


@contextlib.contextmanager
def cluster_of(
    tmp: Path, nodes: dict[str, tuple[str, ...]], *, node_timeout: float | None = None
) -> Iterator[Cluster]:
    """A private redis-server and ``nodes`` (name: sandboxd options), each live; all stopped at exit."""
    suffix = f"nodes-{uuid.uuid4().hex[:8]}"
    with redis_server(tmp) as url, contextlib.ExitStack() as cleanup:
        env = {
            "E2BQ_REDIS_URL": url,
            "E2BQ_QUEUE": suffix,
            "E2BQ_NAMESPACE": suffix,
            "E2B_API_KEY": API_KEY,
        }
        if node_timeout is not None:
            env["E2BQ_NODE_TIMEOUT"] = f"{node_timeout:g}"
        cluster = Cluster(tmp, env, cleanup, NodeStore(Settings.from_env(env)))
        cluster.start_nodes(nodes)
        yield cluster


def equal_nodes(count: int = len(NODES), *host_args: str) -> dict[str, tuple[str, ...]]:
    """``count`` nodes alike: no warm pool (each sandbox made on demand), plus ``host_args``."""
    return {name: ("--warm-pool", "0", *host_args) for name in NODES[:count]}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three equal nodes for a whole module, for tests that lose none of them."""
    with cluster_of(tmp_path_factory.mktemp("cluster"), equal_nodes()) as built:
        yield built


@pytest.fixture
def fragile_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Three equal nodes of this test alone, lost within FAST_NODE_TIMEOUT once killed."""
    with cluster_of(tmp_path, equal_nodes(), node_timeout=FAST_NODE_TIMEOUT) as built:
        yield built


def one_per_node(cluster: Cluster, toolkit: E2BToolkit, names: tuple[str, ...] = NODES) -> dict[str, str]:
    """Create a sandbox for each of ``names`` (equal nodes, each as loaded as the others: placement
    puts one on each); the sandbox id by node."""
    made = [toolkit.manager.create() for _ in names]
    by_node = {slot.node: slot.sandbox_id for slot in made}
    assert sorted(by_node) == sorted(names), [(slot.sandbox_id, slot.node) for slot in made]
    for name, sandbox_id in by_node.items():
        assert sandbox_id in cluster.hosted(name)
    return {str(name): sandbox_id for name, sandbox_id in by_node.items()}


def job_ended(toolkit: E2BToolkit, job_id: str, timeout: float) -> dict[str, Any]:
    """The job's record once it is no longer ``running`` (waiting ``timeout`` seconds at most)."""
    record = wait_for(
        lambda: (r := toolkit.get_job_status(job_id))["status"] != "running" and r, timeout, f"job {job_id}"
    )
    assert isinstance(record, dict)
    return record
