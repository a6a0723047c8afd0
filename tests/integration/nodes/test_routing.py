"""Routing: every toolkit operation on a sandbox of each node runs on that node.

A sandbox lives on its node's host alone (the unmodified SDK pointed at each host finds it on that
one only), and a worker reaches only its own node's host: an operation that succeeds ran there.
What an operation writes is read back through that host, and what it reads was put there through it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from e2bq import E2BToolkit
from tests.integration.nodes.conftest import NODES, Cluster, job_ended, one_per_node
from tests.procs import wait_for


@pytest.fixture(scope="module")
def toolkit(cluster: Cluster) -> Iterator[E2BToolkit]:
    kit = cluster.toolkit()
    try:
        yield kit
    finally:
        kit.shutdown_all_sandboxes()


@pytest.fixture(scope="module")
def sandboxes(cluster: Cluster, toolkit: E2BToolkit) -> dict[str, str]:
    """A sandbox on each node, by node."""
    by_node = one_per_node(cluster, toolkit)
    for name, sandbox_id in by_node.items():
        others = [other for other in NODES if other != name]
        assert all(sandbox_id not in cluster.hosted(other) for other in others)
    return by_node


@pytest.fixture(params=NODES)
def node(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sandbox_id(sandboxes: dict[str, str], node: str) -> str:
    return sandboxes[node]


def unique(stem: str) -> str:
    return f"/home/user/{stem}-{uuid.uuid4().hex[:8]}"


def test_run_python_code(cluster: Cluster, toolkit: E2BToolkit, node: str, sandbox_id: str) -> None:
    path = unique("code")
    answer = toolkit.run_python_code(f"open({path!r}, 'w').write({node!r})\n6 * 7", sandbox_id=sandbox_id)

    assert answer["status"] == "success", answer
    assert answer["results"][0]["text"] == "42"
    assert cluster.sdk(node, sandbox_id).files.read(path) == node


def test_run_python_code_background(
    cluster: Cluster, toolkit: E2BToolkit, node: str, sandbox_id: str
) -> None:
    path = unique("job")
    accepted = toolkit.run_python_code_background(
        f"open({path!r}, 'w').write({node!r})\nprint('wrote', flush=True)", sandbox_id=sandbox_id
    )
    assert accepted["status"] == "accepted", accepted

    record = job_ended(toolkit, accepted["job_id"], 60)

    assert record["status"] == "done", record
    assert record["node"] == node
    assert "wrote" in record["result"]["logs"]["stdout"][0]
    assert cluster.sdk(node, sandbox_id).files.read(path) == node


def test_run_command(cluster: Cluster, toolkit: E2BToolkit, node: str, sandbox_id: str) -> None:
    path = unique("command")
    answer = toolkit.run_command(f"echo -n {node} > {path} && echo done", sandbox_id=sandbox_id)

    assert answer["status"] == "success", answer
    assert answer["stdout"] == "done\n"
    assert cluster.sdk(node, sandbox_id).files.read(path) == node


def test_run_command_background(cluster: Cluster, toolkit: E2BToolkit, node: str, sandbox_id: str) -> None:
    path = unique("command-job")
    accepted = toolkit.run_command(f"echo -n {node} > {path}", sandbox_id=sandbox_id, background=True)
    assert accepted["status"] == "accepted", accepted

    record = job_ended(toolkit, accepted["job_id"], 60)

    assert record["status"] == "done", record
    assert record["node"] == node
    assert cluster.sdk(node, sandbox_id).files.read(path) == node


def test_upload_and_download(
    cluster: Cluster, toolkit: E2BToolkit, node: str, sandbox_id: str, tmp_path: Path
) -> None:
    local = tmp_path / "up.txt"
    local.write_text(f"uploaded to {node}\n")
    there = unique("up")

    uploaded = toolkit.upload_file(str(local), sandbox_id=sandbox_id, sandbox_path=there)

    assert uploaded["status"] == "success", uploaded
    sandbox = cluster.sdk(node, sandbox_id)
    assert sandbox.files.read(there) == f"uploaded to {node}\n"

    source = unique("down")
    sandbox.files.write(source, f"written on {node}'s host\n")
    downloaded = toolkit.download_file_from_sandbox(source, sandbox_id=sandbox_id, local_path=str(tmp_path))

    assert downloaded["status"] == "success", downloaded
    assert (tmp_path / Path(source).name).read_text() == f"written on {node}'s host\n"


def test_run_server_and_get_public_url(
    cluster: Cluster, toolkit: E2BToolkit, node: str, sandbox_id: str
) -> None:
    site = unique("site")
    cluster.sdk(node, sandbox_id).files.write(f"{site}/index.html", f"served on {node}\n")

    server = toolkit.run_server(f"cd {site} && python -m http.server 8000", 8000, sandbox_id=sandbox_id)
    try:
        assert server["status"] == "success", server
        assert httpx.get(server["url"], timeout=10).text == f"served on {node}\n"
        public = toolkit.get_public_url(8000, sandbox_id=sandbox_id)
        assert public["status"] == "success", public
        assert public["url"] == server["url"]
        # The URL is the one the node's own host publishes for that port.
        with cluster.nodes[node].host.control() as control:
            published = control.get(f"/sandboxes/{sandbox_id}/ports/8000").json()
        assert published["url"] == public["url"]
    finally:
        assert toolkit.kill_job(server["job_id"])["status"] == "cancelled"


def test_kill_job(cluster: Cluster, toolkit: E2BToolkit, node: str, sandbox_id: str) -> None:
    accepted = toolkit.run_command_background("sleep 600", sandbox_id=sandbox_id)
    job_id = accepted["job_id"]
    pid = wait_for(lambda: toolkit.get_job_status(job_id).get("pid"), 60, "the job's process to start")
    sandbox = cluster.sdk(node, sandbox_id)
    assert pid in {process.pid for process in sandbox.commands.list()}

    killed = toolkit.kill_job(job_id)

    assert (killed["status"], killed["killed_proc"]) == ("cancelled", True), killed
    assert toolkit.get_job_status(job_id)["status"] == "cancelled"
    wait_for(lambda: pid not in {process.pid for process in sandbox.commands.list()}, 30, "the sleep to stop")


def test_sandbox_attribute_connects_through_the_nodes_host(
    cluster: Cluster, toolkit: E2BToolkit, node: str, sandbox_id: str
) -> None:
    path = unique("slot")
    cluster.sdk(node, sandbox_id).files.write(path, f"on {node}")
    assert "E2B_API_URL" not in cluster.env  # the client knows no host but through the registry

    slot = toolkit.manager.connect(sandbox_id)

    assert slot.node == node
    assert slot.node_url == cluster.nodes[node].url
    sandbox = slot.sandbox
    assert sandbox.connection_config.api_url == cluster.nodes[node].url
    assert sandbox.files.read(path) == f"on {node}"
    assert sandbox.run_code("6 * 7").text == "42"


def test_shutdown_sandbox_on_each_node(cluster: Cluster, toolkit: E2BToolkit) -> None:
    doomed = one_per_node(cluster, toolkit)

    for name, sandbox_id in doomed.items():
        shut = toolkit.shutdown_sandbox(sandbox_id)
        assert shut["status"] == "success", shut
        assert shut["killed"] is True
        assert sandbox_id not in cluster.hosted(name)
    listed = {entry["sandbox_id"] for entry in toolkit.list_managed_sandboxes()["sandboxes"]}
    assert listed.isdisjoint(doomed.values())
