"""Which queue a call goes to: its sandbox's node's (``e2bq.queues``), and whether that node lives.

A sandbox's node never changes, so it is looked up in the registry once per sandbox and kept. A
call to a sandbox on a lost node fails at once with a :class:`~e2bq.errors.NodeLostError` naming
the node, before anything is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..config import Settings
from ..errors import NodeLostError
from ..protocol import is_job
from ..queues import queue_for
from ..stores.nodes import NodeStore, lost_message
from ..stores.registry import Registry


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
        if node is not None:
            lost = self.nodes.lost(node)
            if lost is not None:
                raise NodeLostError(lost_message(lost))
        return Route(queue_for(self.settings.queue, node, batch=batch), node)

    def route(self, args: Mapping[str, object]) -> Route:
        """The route of a call with these arguments: its sandbox's node, the batch queue for a job."""
        sandbox_id = args.get("sandbox_id")
        node = self.node_of(sandbox_id) if isinstance(sandbox_id, str) else None
        return self.to_node(node, batch=is_job(args))

    def check(self, node: str | None) -> None:
        """NodeLostError if ``node`` was lost meanwhile (called while a caller waits)."""
        self.to_node(node)
