"""Which queue a call goes to: its sandbox's node's (``e2bq.queues``), and whether that node lives.

A sandbox's node never changes, so it is looked up in the registry once per sandbox and kept. A
call to a sandbox on a lost node fails at once with a :class:`~e2bq.errors.NodeLostError` naming
the node, before anything is sent.

Whether a node is lost is read from its heartbeat, and a heartbeat read is kept until the moment it
would itself make the node lost: a node is lost exactly when its last heartbeat (``seen_at``) is
older than ``E2BQ_NODE_TIMEOUT``, and heartbeats only move ``seen_at`` forward, so a node seen at
``s`` cannot be lost before ``s + node_timeout``. Until then no call asks Redis again; from then on
every call does, until a newer heartbeat is read. The answer is the same as a fresh read's.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from ..config import Settings
from ..errors import NodeLostError
from ..protocol import is_job
from ..queues import queue_for
from ..stores.nodes import NodeStore, lost_message
from ..stores.registry import Registry
from ..types import NodeRecord


@dataclass(frozen=True)
class Route:
    """Where a call goes: ``queue``, for a sandbox on ``node`` (None: any worker serves it)."""

    queue: str
    node: str | None = None


class Router:
    def __init__(self, settings: Settings, registry: Registry, nodes: NodeStore) -> None:
        self.settings = settings
        self.registry = registry
        self.nodes = nodes
        self._nodes_of: dict[str, str | None] = {}
        self._live_until: dict[str, float] = {}  # node -> until when it cannot be lost (see above)

    def node_of(self, sandbox_id: str) -> str | None:
        """The sandbox's node as the registry recorded it (None: E2B's cloud, or not registered)."""
        if sandbox_id not in self._nodes_of:
            entry = self.registry.get(sandbox_id)
            if entry is None:
                return None  # not kept: it may be registered later (an adopted sandbox)
            self._nodes_of[sandbox_id] = entry.get("node")
        return self._nodes_of[sandbox_id]

    def to_node(self, node: str | None, *, batch: bool = False) -> Route:
        """The route to ``node``'s workers; NodeLostError when the node is lost."""
        if node is not None and time.time() > self._live_until.get(node, 0.0):
            record = self.nodes.record(node)
            if record is not None:
                self.seen(record)
                if self.nodes.is_lost(record):
                    raise NodeLostError(lost_message(self.nodes.info(record, placed=0)))
        return Route(queue_for(self.settings.queue, node, batch=batch), node)

    def seen(self, record: NodeRecord) -> None:
        """Take note of a node's heartbeat read elsewhere (it saves a later call a read)."""
        live_until = record["seen_at"] + self.settings.node_timeout
        if live_until > self._live_until.get(record["node"], 0.0):
            self._live_until[record["node"]] = live_until

    def route(self, args: Mapping[str, object]) -> Route:
        """The route of a call with these arguments: its sandbox's node, the batch queue for a job."""
        sandbox_id = args.get("sandbox_id")
        node = self.node_of(sandbox_id) if isinstance(sandbox_id, str) else None
        return self.to_node(node, batch=is_job(args))

    def check(self, node: str | None) -> None:
        """NodeLostError if ``node`` was lost meanwhile (called while a caller waits)."""
        self.to_node(node)
