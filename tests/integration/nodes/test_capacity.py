"""Every node full: a create waits for a free slot instead of failing, and lands where one frees up;
with a short ``create_wait`` it ends with an error that says no node had room."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from e2bq import E2BToolkit, SandboxSlot
from tests.integration.nodes.conftest import NODES, Cluster, cluster_of, equal_nodes


@pytest.fixture(scope="module")
def full_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three nodes of one sandbox each."""
    nodes = equal_nodes(len(NODES), "--max-sandboxes", "1")
    with cluster_of(tmp_path_factory.mktemp("full"), nodes) as built:
        yield built


@pytest.fixture
def filled(full_cluster: Cluster) -> Iterator[E2BToolkit]:
    """A toolkit whose sandboxes fill every node (one each); all shut down after the test."""
    toolkit = full_cluster.toolkit()
    try:
        made = [toolkit.create_sandbox() for _ in NODES]
        assert sorted(m["result"]["node"] for m in made if m["status"] == "success") == list(NODES), made
        yield toolkit
    finally:
        toolkit.shutdown_all_sandboxes()


@pytest.mark.slow
def test_a_create_waits_for_a_free_slot(full_cluster: Cluster, filled: E2BToolkit) -> None:
    freed = {entry["node"]: entry["sandbox_id"] for entry in filled.list_managed_sandboxes()["sandboxes"]}
    asked = threading.Event()

    def create() -> tuple[SandboxSlot, float]:
        asked.set()
        slot = full_cluster.manager(create_wait=120).create()
        return slot, time.monotonic()

    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(create)
        asked.wait()
        assert not waiting.done()  # every node is full: it cannot have been placed
        shut = filled.shutdown_sandbox(freed["node2"])
        assert shut["status"] == "success", shut
        freed_at = time.monotonic()
        slot, made_at = waiting.result(timeout=120)

    assert made_at > freed_at
    assert slot.node == "node2"
    assert slot.sandbox_id in full_cluster.hosted("node2")
    answer = filled.run_python_code("6 * 7", sandbox_id=slot.sandbox_id)
    assert answer["status"] == "success", answer
    for name in NODES:
        assert full_cluster.refused_creates(name) == 0


@pytest.mark.slow
def test_a_short_create_wait_ends_with_an_error_that_every_node_is_full(
    full_cluster: Cluster, filled: E2BToolkit
) -> None:
    impatient = full_cluster.toolkit(create_wait=2)

    started = time.monotonic()
    answer = impatient.create_sandbox()
    took = time.monotonic() - started

    assert answer["status"] == "error", answer
    assert "no node had a free sandbox slot within 2 s" in answer["message"]
    for name in NODES:
        assert f"{name} 1/1 live" in answer["message"]
    assert 2 <= took < 60
    assert len(filled.list_managed_sandboxes()["sandboxes"]) == len(NODES)
