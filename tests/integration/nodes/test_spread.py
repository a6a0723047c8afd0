"""Placement: creates spread evenly over equal nodes, each sandbox recorded with its node (and
living on that node's host alone), and a full node gets no create while another has room."""

from __future__ import annotations

import collections
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from e2bq import SandboxSlot
from tests.integration.nodes.conftest import NODES, Cluster, cluster_of, equal_nodes

CREATES = 10


def create_many(cluster: Cluster, count: int, *, parallel: int) -> list[SandboxSlot]:
    """``count`` creates, ``parallel`` at a time, each client with a manager of its own."""

    def create(_: int) -> SandboxSlot:
        return cluster.manager().create(metadata={"suite": "spread"})

    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(create, range(count)))


@pytest.mark.slow
@pytest.mark.parametrize(("nodes", "fewest", "most"), [(2, 3, 7), (3, 2, 5)])
def test_creates_spread_evenly_over_equal_nodes(tmp_path: Path, nodes: int, fewest: int, most: int) -> None:
    with cluster_of(tmp_path, equal_nodes(nodes)) as cluster:
        slots = create_many(cluster, CREATES, parallel=4)

        names = NODES[:nodes]
        per_node = collections.Counter(slot.node for slot in slots)
        assert set(per_node) == set(names), per_node
        assert all(fewest <= per_node[name] <= most for name in names), per_node
        # Each sandbox lives on the host of the node it was placed on, and on no other.
        hosted = {name: cluster.hosted(name) for name in names}
        for slot in slots:
            assert slot.node is not None
            assert slot.node_url == cluster.nodes[slot.node].url
            assert slot.to_dict()["node"] == slot.node
            assert [name for name in names if slot.sandbox_id in hosted[name]] == [slot.node]
        # list_managed_sandboxes shows the node of each.
        listed = cluster.toolkit().list_managed_sandboxes()
        assert listed["status"] == "success"
        assert {entry["sandbox_id"]: entry["node"] for entry in listed["sandboxes"]} == {
            slot.sandbox_id: slot.node for slot in slots
        }
        assert {entry["state"] for entry in listed["sandboxes"]} == {"running"}


@pytest.mark.slow
def test_a_full_node_gets_no_create_while_another_has_room(tmp_path: Path) -> None:
    small, large = 2, 8
    nodes = {"node1": ("--warm-pool", "0", "--max-sandboxes", str(small)),
             "node2": ("--warm-pool", "0", "--max-sandboxes", str(large))}
    with cluster_of(tmp_path, nodes) as cluster:
        slots = create_many(cluster, small + large, parallel=3)

        per_node = collections.Counter(slot.node for slot in slots)
        assert per_node == {"node1": small, "node2": large}
        assert len(cluster.hosted("node1")) == small and len(cluster.hosted("node2")) == large
        # No create was ever sent to a host without room: neither host refused one.
        assert cluster.refused_creates("node1") == 0
        assert cluster.refused_creates("node2") == 0
