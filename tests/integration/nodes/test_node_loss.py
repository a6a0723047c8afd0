"""A node SIGKILLed mid-work (its sandboxd, every jail below it, and its worker): calls to its
sandboxes fail soon with an error naming the node, never waiting out their own timeouts; its jobs
end ``error``; its sandboxes are listed ``lost``; creates and the other nodes carry on; and a node
started again on the same port is live and takes creates again.

Elapsed times are measured, but asserted only against generous bounds: the node's timeout plus
``SLACK`` proves that nothing waits for a call's own timeout (300 s), whatever the machine's load.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.integration.nodes.conftest import NODES, SLACK, Cluster, job_ended, one_per_node
from tests.procs import wait_for

DOOMED = "node2"


def names_lost_node(answer: dict[str, Any], node: str = DOOMED) -> bool:
    return answer["status"] == "error" and f"node {node} is lost" in answer["message"]


@pytest.mark.slow
def test_a_killed_node_fails_its_calls_and_jobs_while_the_others_carry_on(
    fragile_cluster: Cluster, tmp_path: Path
) -> None:
    cluster = fragile_cluster
    bound = cluster.node_timeout + SLACK
    toolkit = cluster.toolkit()
    sandboxes = one_per_node(cluster, toolkit)
    doomed = sandboxes[DOOMED]
    survivors = {name: sid for name, sid in sandboxes.items() if name != DOOMED}
    # Mid-work: a command job running there, a synchronous call in flight, and a code job that
    # started and waits for the kernel the synchronous call holds.
    command_job = toolkit.run_command_background("sleep 600", sandbox_id=doomed)["job_id"]
    wait_for(lambda: toolkit.get_job_status(command_job).get("pid"), 60, "the command job to start")
    in_flight = cluster.toolkit()
    pool = ThreadPoolExecutor(1)
    try:
        sync_call = pool.submit(
            in_flight.run_python_code,
            "import time\nopen('/home/user/in-flight', 'w').close()\ntime.sleep(600)",
            sandbox_id=doomed,
            timeout=300,
        )
        sandbox = cluster.sdk(DOOMED, doomed)
        wait_for(lambda: sandbox.files.exists("/home/user/in-flight"), 60, "the synchronous call to run")
        code_job = toolkit.run_python_code_background("1 + 1", sandbox_id=doomed)["job_id"]
        wait_for(lambda: toolkit.get_job_status(code_job).get("state") == "started", 60, "the code job")

        cluster.kill_node(DOOMED)
        killed_at = time.monotonic()

        # The call in flight returns an error naming the node, long before its own 300 s.
        answer = sync_call.result(timeout=bound + 5)
        in_flight_took = time.monotonic() - killed_at
    finally:
        pool.shutdown(wait=False)  # should the test fail first, the call ends with the cluster
    assert names_lost_node(answer), answer
    assert in_flight_took < bound, in_flight_took

    # A new call to one of its sandboxes: the same error, as soon as the node is lost (at once after).
    started = time.monotonic()
    answer = toolkit.run_python_code("1 + 1", sandbox_id=doomed)
    assert names_lost_node(answer), answer
    assert time.monotonic() - started < bound
    started = time.monotonic()
    calls = {
        "run_command": lambda: toolkit.run_command("true", sandbox_id=doomed),
        "run_command background": lambda: toolkit.run_command("true", sandbox_id=doomed, background=True),
        "run_python_code_background": lambda: toolkit.run_python_code_background("1", sandbox_id=doomed),
        "upload_file": lambda: toolkit.upload_file(str(upload_source(tmp_path)), sandbox_id=doomed),
        "download_file_from_sandbox": lambda: toolkit.download_file_from_sandbox(
            "/home/user/x", sandbox_id=doomed, local_path=str(tmp_path)
        ),
        "get_public_url": lambda: toolkit.get_public_url(8000, sandbox_id=doomed),
        "run_server": lambda: toolkit.run_server("python -m http.server 8000", 8000, sandbox_id=doomed),
    }
    for what, call in calls.items():
        answer = call()
        assert names_lost_node(answer), (what, answer)
    assert time.monotonic() - started < SLACK, "calls to a sandbox of a node known lost fail at once"

    # Its running jobs end as errors naming the node.
    for job_id in (command_job, code_job):
        record = job_ended(toolkit, job_id, bound)
        assert record["status"] == "error", record
        assert f"node {DOOMED} is lost" in record["message"], record
    assert toolkit.kill_job(command_job)["status"] == "not_cancelled"  # already ended

    # Its sandboxes are listed as lost, the others as running.
    states = {e["sandbox_id"]: e["state"] for e in toolkit.list_managed_sandboxes()["sandboxes"]}
    assert states == {doomed: "lost", **{sid: "running" for sid in survivors.values()}}
    assert cluster.state(DOOMED) == "lost"

    # The other nodes' sandboxes keep working, and new creates land on them.
    for sandbox_id in survivors.values():
        answer = toolkit.run_python_code("6 * 7", sandbox_id=sandbox_id)
        assert answer["status"] == "success", answer
    fresh = [toolkit.create_sandbox() for _ in range(4)]
    assert all(made["status"] == "success" for made in fresh), fresh
    assert {made["result"]["node"] for made in fresh} == set(survivors)
    assert toolkit.run_python_code("1", sandbox_id=fresh[0]["sandbox_id"])["status"] == "success"

    # Shutting down a sandbox of the lost node forgets it: there is nothing left to kill.
    shut = toolkit.shutdown_sandbox(doomed)
    assert shut["status"] == "success", shut
    assert shut["killed"] is False
    assert f"node {DOOMED} is lost" in shut["message"]
    listed = {entry["sandbox_id"] for entry in toolkit.list_managed_sandboxes()["sandboxes"]}
    assert doomed not in listed
    assert set(survivors.values()) <= listed


def upload_source(folder: Path) -> Path:
    source = folder / "upload.txt"
    source.write_text("never sent\n")
    return source


@pytest.mark.slow
def test_a_node_started_again_is_live_and_takes_creates(fragile_cluster: Cluster) -> None:
    cluster = fragile_cluster
    toolkit = cluster.toolkit()
    sandboxes = one_per_node(cluster, toolkit)
    old = sandboxes[DOOMED]
    port = cluster.nodes[DOOMED].port

    cluster.kill_node(DOOMED)
    cluster.wait_state(DOOMED, "lost", cluster.node_timeout + SLACK)
    while_lost = toolkit.create_sandbox()
    assert while_lost["status"] == "success", while_lost
    assert while_lost["result"]["node"] != DOOMED

    node = cluster.restart_node(DOOMED)

    assert node.port == port and node.url == f"http://127.0.0.1:{port}"
    assert cluster.state(DOOMED) == "live"
    assert all(cluster.state(name) == "live" for name in NODES)
    # It has the most room now, so it takes the next create, and serves it.
    made = toolkit.create_sandbox()
    assert made["status"] == "success", made
    assert made["result"]["node"] == DOOMED
    assert made["sandbox_id"] in cluster.hosted(DOOMED)
    answer = toolkit.run_python_code("6 * 7", sandbox_id=made["sandbox_id"])
    assert answer["status"] == "success", answer
    # The sandbox it ran before it died is gone: listed lost (its host is another run of sandboxd),
    # a call to it says so, and the registry forgets it.
    states = {e["sandbox_id"]: e["state"] for e in toolkit.list_managed_sandboxes()["sandboxes"]}
    assert states[old] == "lost" and states[made["sandbox_id"]] == "running"
    gone = toolkit.run_python_code("1", sandbox_id=old)
    assert gone["status"] == "error", gone
    assert f"sandbox {old} is not running" in gone["message"]
    listed = {entry["sandbox_id"] for entry in toolkit.list_managed_sandboxes()["sandboxes"]}
    assert old not in listed
    assert {sandboxes["node1"], sandboxes["node3"], made["sandbox_id"]} <= listed


@pytest.mark.slow
def test_a_default_sandbox_on_a_lost_node_is_replaced(fragile_cluster: Cluster) -> None:
    cluster = fragile_cluster
    toolkit = cluster.toolkit()
    sandboxes = one_per_node(cluster, toolkit)
    toolkit.registry.set_default(toolkit.manager.namespace, sandboxes[DOOMED])
    cluster.kill_node(DOOMED)
    cluster.wait_state(DOOMED, "lost", cluster.node_timeout + SLACK)

    answer = toolkit.run_python_code("6 * 7")

    assert answer["status"] == "success", answer
    assert f"the default sandbox {sandboxes[DOOMED]} was gone" in answer["message"]
    replacement = toolkit.list_managed_sandboxes()["default_sandbox_id"]
    assert replacement not in (None, sandboxes[DOOMED])
    entry = toolkit.manager.registry.get(str(replacement))
    assert entry is not None and entry.get("node") != DOOMED


@pytest.mark.slow
def test_transfers_started_as_a_node_dies_end_with_the_error_naming_it(
    fragile_cluster: Cluster, tmp_path: Path
) -> None:
    cluster = fragile_cluster
    bound = cluster.node_timeout + SLACK
    sandbox_id = one_per_node(cluster, cluster.toolkit())[DOOMED]
    cluster.sdk(DOOMED, sandbox_id).files.write("/home/user/small.txt", "never read\n")
    large = tmp_path / "large.bin"  # more chunks than the transfer window: its sender must wait
    large.write_bytes(b"x" * (8 * 1024 * 1024))

    cluster.kill_node(DOOMED)
    killed_at = time.monotonic()
    # Sent before the node is known lost: nothing will ever read the upload or feed the download.
    with ThreadPoolExecutor(2) as pool:
        upload = pool.submit(
            cluster.toolkit().upload_file, str(large), sandbox_id=sandbox_id, sandbox_path="/home/user/large"
        )
        download = pool.submit(
            cluster.toolkit().download_file_from_sandbox,
            "/home/user/small.txt",
            sandbox_id=sandbox_id,
            local_path=str(tmp_path),
        )
        answers = {"upload": upload.result(timeout=300), "download": download.result(timeout=300)}
        took = time.monotonic() - killed_at

    assert all(names_lost_node(answer) for answer in answers.values()), answers
    assert took < bound, took
    assert not (tmp_path / "small.txt").exists()


@pytest.mark.slow
def test_creates_placed_on_a_node_as_it_dies_land_on_another(fragile_cluster: Cluster) -> None:
    cluster = fragile_cluster
    toolkit = cluster.toolkit()
    one_per_node(cluster, toolkit)

    cluster.kill_node("node1")
    started = time.monotonic()
    # Not yet known lost, node1 has as much room as any: placement picks it for one of these at least.
    made = [toolkit.create_sandbox() for _ in NODES]
    took = time.monotonic() - started

    assert all(m["status"] == "success" for m in made), made
    assert {m["result"]["node"] for m in made} <= {"node2", "node3"}
    assert took < cluster.node_timeout + 2 * SLACK
