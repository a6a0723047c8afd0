"""Flower as deployed: it loads e2bq's app with the environment the deployment files give it (no
provider), and its Broker page lists each node's queues once it has asked the workers for them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2bq.launch import start_flower
from tests.deploy import compose, k8s
from tests.procs import free_port, redis_server, wait_for, worker

APP_QUEUES = (
    "import json; from workers.app import app; print(json.dumps([q.name for q in app.conf.task_queues]))"
)
MACHINE = {"spec.nodeName": "pool-a-7xk2p", "status.podIP": "10.8.3.17"}


def deployed_envs() -> list[Any]:
    """(environment, the queues its process's app takes) of Flower and of a node's worker, as the
    compose file and the node manifests set them."""
    file = compose.load()
    nodes_set = k8s.APPLIED["nodes"]
    node_pod = k8s.pod_spec(next(d for d in k8s.documents(nodes_set) if d["kind"] == "DaemonSet"))
    machine = MACHINE["spec.nodeName"]
    return [
        pytest.param(
            compose.environment(file["services"]["flower"]), ["e2bq", "e2bq.batch"], id="compose-flower"
        ),
        pytest.param(
            compose.environment(file["services"]["node2-worker"]),
            ["e2bq", "e2bq.node.node2", "e2bq.batch", "e2bq.node.node2.batch"],
            id="compose-node2-worker",
        ),
        pytest.param(
            k8s.resolved_env(
                k8s.container(k8s.find(nodes_set, "Deployment", "flower")), MACHINE, k8s.secrets(nodes_set)
            ),
            ["e2bq", "e2bq.batch"],
            id="k8s-flower",
        ),
        pytest.param(
            k8s.resolved_env(k8s.containers(node_pod)["worker"], MACHINE, k8s.secrets(nodes_set)),
            ["e2bq", f"e2bq.node.{machine}", "e2bq.batch", f"e2bq.node.{machine}.batch"],
            id="k8s-node-worker",
        ),
    ]


@pytest.mark.parametrize(("env", "queues"), deployed_envs())
def test_the_deployed_environment_loads_the_app_with_its_queues(
    env: dict[str, str], queues: list[str]
) -> None:
    # Nothing connects at import: the Redis named (redis:6379) need not exist here.
    loaded = subprocess.run(
        [sys.executable, "-c", APP_QUEUES],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=False,
    )

    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout) == queues


def broker_queues(flower: str, login: tuple[str, str]) -> set[str]:
    page = httpx.get(f"{flower}/broker", auth=login, timeout=10)
    page.raise_for_status()
    return set(re.findall(r"<td>(e2bq[\w.-]*)</td>", page.text))


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_broker_page_lists_each_nodes_queues_once_flower_has_asked_its_workers(tmp_path: Path) -> None:
    file = compose.load()
    login = ("e2bq", "flower-test")
    with redis_server(tmp_path) as redis_url:

        def node_env(service: str) -> dict[str, str]:
            # The compose file's worker, on this test's Redis; its sandboxd need not run for this.
            unreachable = f"http://127.0.0.1:{free_port()}"
            return {
                **compose.environment(file["services"][service]),
                "E2BQ_REDIS_URL": redis_url, "E2B_API_URL": unreachable, "E2B_SANDBOX_URL": unreachable,
            }

        flower_env = {
            **compose.environment(file["services"]["flower"]),
            "E2BQ_REDIS_URL": redis_url, "FLOWER_BASIC_AUTH": ":".join(login),
        }
        node1 = {"e2bq.node.node1", "e2bq.node.node1.batch"}
        node2 = {"e2bq.node.node2", "e2bq.node.node2.batch"}
        with (
            worker(tmp_path, node_env("node1-worker"), name="node1-worker"),
            start_flower(tmp_path, env=flower_env) as flower,
        ):
            # Flower asks every worker alive when it starts for its queues.
            wait_for(lambda: node1 <= broker_queues(flower.url, login), 30, "node1's queues on the page")
            with worker(tmp_path, node_env("node2-worker"), name="node2-worker"):
                # A worker that came later is listed once Flower asks again (Workers > Refresh).
                assert not node2 & broker_queues(flower.url, login)
                refreshed = httpx.get(
                    f"{flower.url}/api/workers", params={"refresh": 1}, auth=login, timeout=30
                )
                assert refreshed.status_code == 200
                wait_for(lambda: node2 <= broker_queues(flower.url, login), 30, "node2's queues, refreshed")
                assert {"e2bq", "e2bq.batch"} | node1 | node2 == broker_queues(flower.url, login)
