"""Node placement: the least loaded live node, or one named node only (a worker placing on its own)."""

from __future__ import annotations

import time

from e2bq.config import Settings
from e2bq.stores.nodes import NodeStore
from e2bq.types import NodeRecord


def beat(nodes: NodeStore, name: str, free: int) -> None:
    record: NodeRecord = {
        "node": name, "url": f"http://{name}", "capacity": 10, "live": 10 - free, "free": free,
        "seen_at": time.time(),
    }
    nodes.beat(record, time.time())


def test_a_create_goes_to_the_node_with_the_most_free_slots(settings: Settings) -> None:
    nodes = NodeStore(settings)
    beat(nodes, "a", free=1)
    beat(nodes, "b", free=3)

    placed = [nodes.place() for _ in range(4)]

    assert [p.node for p in placed if p is not None] == ["b", "b", "a", "b"]
    assert nodes.place() is None  # every slot is reserved


def test_a_named_node_only_is_considered(settings: Settings) -> None:
    nodes = NodeStore(settings)
    beat(nodes, "a", free=1)
    beat(nodes, "b", free=5)

    first = nodes.place("a")

    assert first is not None and (first.node, first.url) == ("a", "http://a")
    assert nodes.place("a") is None  # its one slot is taken, though b has room
    assert nodes.place("c") is None  # never heard of
