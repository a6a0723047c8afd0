"""Pause, resume, fork and snapshots on a cluster: each runs on its sandbox's node; forks are
recorded on the node of their source, and a sandbox made from a snapshot lands on the node that
keeps the snapshot, whichever node has the most room."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2b_code_interpreter import Sandbox

from e2bq import E2BToolkit
from tests.integration.nodes.conftest import NODES, Cluster, one_per_node


@pytest.fixture(scope="module")
def toolkit(cluster: Cluster) -> Iterator[E2BToolkit]:
    kit = cluster.toolkit()
    try:
        yield kit
    finally:
        kit.shutdown_all_sandboxes()


@pytest.fixture(scope="module")
def sandboxes(cluster: Cluster, toolkit: E2BToolkit) -> dict[str, str]:
    return one_per_node(cluster, toolkit)


@pytest.mark.parametrize("node", NODES)
def test_pause_and_resume_run_on_the_sandbox_s_node(
    cluster: Cluster, toolkit: E2BToolkit, sandboxes: dict[str, str], node: str
) -> None:
    sandbox_id = sandboxes[node]

    paused = toolkit.pause_sandbox(sandbox_id)

    assert paused["status"] == "success" and paused["paused"] is True, paused
    info = Sandbox.get_info(sandbox_id, **cluster.sdk_options(node))
    assert str(getattr(info.state, "value", info.state)) == "paused"
    ran = toolkit.run_python_code("21 * 2", sandbox_id=sandbox_id)
    assert ran["status"] == "success" and ran["results"][0]["text"] == "42", ran
    assert toolkit.get_sandbox_status(sandbox_id)["state"] == "running"


@pytest.mark.parametrize("node", NODES)
def test_forks_live_on_their_source_s_node(
    cluster: Cluster, toolkit: E2BToolkit, sandboxes: dict[str, str], node: str
) -> None:
    forked = toolkit.fork_sandbox(sandboxes[node], count=2, timeout=120)

    assert forked["status"] == "success" and forked["count"] == 2, forked
    ids = {str(fork["sandbox_id"]) for fork in forked["forks"]}
    assert ids <= cluster.hosted(node)
    for fork_id in ids:
        assert toolkit.get_sandbox_status(fork_id)["node"] == node
        assert toolkit.shutdown_sandbox(fork_id)["killed"] is True


def test_a_sandbox_from_a_snapshot_lands_on_the_snapshot_s_node(
    cluster: Cluster, toolkit: E2BToolkit, sandboxes: dict[str, str]
) -> None:
    node = NODES[0]
    assert (
        toolkit.run_command("echo here > /home/user/n.txt", sandbox_id=sandboxes[node])["status"] == "success"
    )
    taken = toolkit.create_snapshot(sandboxes[node])
    assert taken["status"] == "success" and taken["node"] == node, taken
    listed = toolkit.list_snapshots()
    assert {s["snapshot_id"]: s["node"] for s in listed["snapshots"]}.get(taken["snapshot_id"]) == node

    made = [toolkit.create_sandbox(template=taken["snapshot_id"], timeout=120) for _ in range(2)]

    for created in made:
        assert created["status"] == "success", created
        assert created["result"]["node"] == node
        read = toolkit.run_command("cat /home/user/n.txt", sandbox_id=created["sandbox_id"])
        assert read["status"] == "success" and read["stdout"].strip() == "here", read
        toolkit.shutdown_sandbox(created["sandbox_id"])
    deleted = toolkit.delete_snapshot(taken["snapshot_id"])
    assert deleted["status"] == "success" and deleted["deleted"] is True, deleted
