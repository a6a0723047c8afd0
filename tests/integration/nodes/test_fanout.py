"""run_in_all_sandboxes over the sandboxes of every node: one task per node, a result for each
sandbox; with a node lost, its sandboxes' entries are errors naming it and the rest succeed."""

from __future__ import annotations

import re
import time

import pytest

from tests.integration.nodes.conftest import NODES, SLACK, Cluster, one_per_node

PER_NODE = 2
CODE = "import os\nos.path.exists('/home/user/mine')"


def fan_out_tasks_received(cluster: Cluster, name: str) -> int:
    """How many fan-out tasks node ``name``'s worker took, as its log says."""
    log = cluster.nodes[name].worker.log.read_text(errors="replace")
    return len(re.findall(r"Task e2bq\.run_code_each\[[^]]+\] received", log))


@pytest.mark.slow
def test_run_in_all_sandboxes_over_every_node_and_with_one_lost(fragile_cluster: Cluster) -> None:
    cluster = fragile_cluster
    toolkit = cluster.toolkit()
    by_node: dict[str, list[str]] = {name: [] for name in NODES}
    for _ in range(PER_NODE):
        for name, sandbox_id in one_per_node(cluster, toolkit).items():
            by_node[name].append(sandbox_id)
    # One sandbox of each node has a file the code looks for: each answer comes from its own sandbox.
    for name, (marked, _) in by_node.items():
        cluster.sdk(name, marked).files.write("/home/user/mine", name)

    everywhere = toolkit.run_in_all_sandboxes(CODE)

    assert everywhere["status"] == "success"
    assert everywhere["message"] == f"{PER_NODE * len(NODES)} of {PER_NODE * len(NODES)} succeeded"
    for ids in by_node.values():
        marked, plain = ids
        assert everywhere["result"][marked]["results"][0]["text"] == "True", everywhere["result"][marked]
        assert everywhere["result"][plain]["results"][0]["text"] == "False", everywhere["result"][plain]
    assert {name: fan_out_tasks_received(cluster, name) for name in NODES} == dict.fromkeys(NODES, 1)

    cluster.kill_node("node3")
    started = time.monotonic()
    one_lost = toolkit.run_in_all_sandboxes(CODE)
    took = time.monotonic() - started

    assert took < cluster.node_timeout + SLACK
    assert one_lost["message"] == f"{PER_NODE * 2} of {PER_NODE * len(NODES)} succeeded"
    for name, ids in by_node.items():
        for sandbox_id in ids:
            answer = one_lost["result"][sandbox_id]
            if name == "node3":
                assert answer["status"] == "error", answer
                assert answer["sandbox_id"] == sandbox_id
                assert "node node3 is lost" in answer["message"]
            else:
                assert answer["status"] == "success", answer
    assert {name: fan_out_tasks_received(cluster, name) for name in ("node1", "node2")} == {
        "node1": 2, "node2": 2
    }
    # Asked again once the node is known lost, it fails that node's part without sending it a task.
    cluster.wait_state("node3", "lost", SLACK)
    again = toolkit.run_in_all_sandboxes(CODE)
    assert again["message"] == one_lost["message"]
    for sandbox_id in by_node["node3"]:
        assert "node node3 is lost" in again["result"][sandbox_id]["message"]
    assert {name: fan_out_tasks_received(cluster, name) for name in ("node1", "node2")} == {
        "node1": 3, "node2": 3
    }
