"""deploy/k8s: every manifest is valid for its kind, and the pieces refer to each other correctly.

Two sets are applied: deploy/k8s (a node on every machine: sandboxd and its worker in one pod of a
DaemonSet) and deploy/k8s/e2b-cloud (workers for E2B's cloud, scaled by KEDA); both include
deploy/k8s/base (namespace, Secret, Redis, Flower).

Kubernetes' own kinds are checked with kubernetes-validate's bundled (strict) schemas; KEDA's kinds,
which it has no schema for, with tests/deploy/schemas/keda-v1alpha1.json (see the README there).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from e2bq import Settings
from e2bq.queues import worker_queues
from e2bq.sandboxd.settings import HostSettings
from tests.deploy import compose, variables
from tests.deploy.k8s import (
    APPLIED,
    K8S,
    Document,
    container,
    containers,
    documents,
    env_of,
    find,
    folders,
    kustomization,
    manifests,
    pod_spec,
    pod_specs,
    resolved_env,
    secrets,
    security,
)

KEDA_SCHEMA = Path(__file__).with_name("schemas") / "keda-v1alpha1.json"
KUBERNETES_VERSION = "1.30.0"
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}
NODES = APPLIED["nodes"]
CLOUD = APPLIED["e2b-cloud"]
# What the kubelet would give the node pod's fieldRefs on some machine.
MACHINE = {"spec.nodeName": "pool-a-7xk2p", "status.podIP": "10.8.3.17", "status.hostIP": "192.168.4.21"}


def validate(document: Document) -> None:
    """Raise if ``document`` is not valid for its kind (unknown fields included)."""
    if document["kind"] in KEDA_KINDS:
        jsonschema.Draft202012Validator(json.loads(KEDA_SCHEMA.read_text())).validate(document)
    else:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def the_node() -> Document:
    (daemonset,) = [d for d in documents(NODES) if d["kind"] == "DaemonSet"]
    return daemonset


def sandboxd() -> Document:
    return container(the_node(), "sandboxd")


def node_worker() -> Document:
    return container(the_node(), "worker")


def cloud_worker() -> Document:
    (worker,) = [
        d for d in documents(CLOUD) if d["kind"] == "Deployment" and container(d)["args"][0] == "worker"
    ]
    return worker


def scaled_object() -> Document:
    (scaled,) = [d for d in documents(CLOUD) if d["kind"] == "ScaledObject"]
    return scaled


def every_document() -> list[tuple[str, Document]]:
    """Each document of every applied set once (base's are in both)."""
    seen: dict[tuple[str, str, str], tuple[str, Document]] = {}
    for folder in APPLIED.values():
        for path, document in manifests(folder):
            key = (str(path), document["kind"], document["metadata"]["name"])
            seen.setdefault(key, (str(path.relative_to(K8S)), document))
    return list(seen.values())


def node_env() -> dict[str, str]:
    return resolved_env(node_worker(), MACHINE, secrets(NODES))


def sandboxd_env() -> dict[str, str]:
    return resolved_env(sandboxd(), MACHINE, secrets(NODES))


# -- the files: complete, valid, buildable ------------------------------------------------------


@pytest.mark.parametrize("folder", folders(), ids=lambda f: str(f.relative_to(K8S)) or ".")
def test_each_kustomization_lists_every_manifest_of_its_folder(folder: Path) -> None:
    on_disk = {p.name for p in folder.iterdir() if p.suffix in (".yaml", ".yml")} - {"kustomization.yaml"}
    listed = kustomization(folder)["resources"]
    files = [r for r in listed if not (folder / r).is_dir()]

    assert sorted(files) == sorted(on_disk)
    assert len(set(listed)) == len(listed)
    for included in set(listed) - set(files):
        assert (folder / included / "kustomization.yaml").exists(), included


def test_every_kustomization_is_applied_by_one_of_the_two_sets() -> None:
    included = {K8S / "base"} | set(APPLIED.values())
    assert set(folders()) == included
    for folder in APPLIED.values():
        included = {(folder / r).resolve() for r in kustomization(folder)["resources"]}
        assert (K8S / "base").resolve() in included


@pytest.mark.parametrize(
    "document",
    [pytest.param(d, id=f"{name}:{d['kind']}/{d['metadata']['name']}") for name, d in every_document()],
)
def test_each_manifest_is_valid(document: Document) -> None:
    validate(document)


def test_the_validators_reject_a_misspelt_field() -> None:
    node = copy.deepcopy(the_node())
    node["spec"]["template"]["spec"]["initContainers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(node)

    scaled = copy.deepcopy(scaled_object())
    scaled["spec"]["triggers"][0]["metadata"]["listLength"] = 10  # KEDA wants strings here
    with pytest.raises(jsonschema.ValidationError):
        validate(scaled)


@pytest.mark.parametrize("name", sorted(APPLIED))
def test_kustomize_builds_the_whole_set(name: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: `kubectl kustomize` cannot be run here")
    folder = APPLIED[name]
    built = subprocess.run(
        [kubectl, "kustomize", str(folder)],
        capture_output=True, text=True, env={**os.environ, "KUBECONFIG": os.devnull}, check=False,
    )
    assert built.returncode == 0, built.stderr

    built_documents = [d for d in yaml.safe_load_all(built.stdout) if d]
    namespace = kustomization(folder)["namespace"]
    assert len(built_documents) == len(manifests(folder))
    for document in built_documents:
        validate(document)
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == namespace
    image = kustomization(folder)["images"][0]
    images = {c["image"] for pod in pod_specs(built_documents) for c in containers(pod).values()}
    assert f"{image['newName']}:{image['newTag']}" in images


def test_every_e2bq_container_runs_the_one_image_and_sets_only_variables_e2bq_reads() -> None:
    for folder in APPLIED.values():
        images = {i["name"] for i in kustomization(folder)["images"]}
        for pod in pod_specs(documents(folder)):
            for c in containers(pod).values():
                if c["image"].startswith("redis:"):
                    continue
                assert images == {"e2bq"} and c["image"] == "e2bq", c["name"]
                assert variables.unknown(env_of(c)) == set(), c["name"]


def test_redis_is_the_image_the_compose_file_runs() -> None:
    redis = find(NODES, "StatefulSet", "redis")
    assert container(redis)["image"] == compose.load()["services"]["redis"]["image"]


def test_every_secret_reference_names_a_key_of_an_existing_secret() -> None:
    for folder in APPLIED.values():
        known = secrets(folder)
        references = [
            e["valueFrom"]["secretKeyRef"]
            for pod in pod_specs(documents(folder))
            for c in containers(pod).values()
            for e in c.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        ]
        references += [
            {"name": r["name"], "key": r["key"]}
            for d in documents(folder)
            if d["kind"] == "TriggerAuthentication"
            for r in d["spec"]["secretTargetRef"]
        ]

        assert references
        for reference in references:
            assert reference["key"] in known[reference["name"]], reference
        # The example Secrets hold placeholders, never something that looks like a chosen secret.
        for secret in known.values():
            for value in secret.values():
                assert "REPLACE" in value or re.fullmatch(r"e2b_0{40}", value), value


def test_redis_persists_with_aof_on_a_claimed_volume() -> None:
    redis = find(NODES, "StatefulSet", "redis")
    args = container(redis)["args"]
    claims = {c["metadata"]["name"] for c in redis["spec"]["volumeClaimTemplates"]}
    mounts = {m["mountPath"]: m["name"] for m in container(redis)["volumeMounts"]}

    assert args[args.index("--appendonly") + 1] == "yes"
    assert mounts[args[args.index("--dir") + 1]] in claims
    assert redis["spec"]["serviceName"] == "redis"


# -- a node on every machine -------------------------------------------------------------------


def test_a_node_is_one_pod_per_machine_with_sandboxd_started_before_its_worker() -> None:
    pod = pod_spec(the_node())
    (sidecar,) = pod["initContainers"]
    (worker,) = pod["containers"]

    assert the_node()["kind"] == "DaemonSet"
    # A native sidecar: running (and healthy) before the worker starts, stopped after it stops.
    assert sidecar["name"] == "sandboxd" and sidecar["restartPolicy"] == "Always"
    assert sidecar["args"] == ["sandboxd"]
    assert sidecar["startupProbe"]["httpGet"]["path"] == "/health"
    assert worker["args"][0] == "worker"
    grace = float(node_env()["E2BQ_WORKER_GRACE"])
    assert pod["terminationGracePeriodSeconds"] > grace, "running jobs finish before the pod is killed"


def test_sandboxd_is_privileged_keeps_state_in_an_empty_dir_and_never_uses_host_paths() -> None:
    pod = pod_spec(the_node())
    env = env_of(sandboxd())
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["mountPath"]: m["name"] for m in sandboxd()["volumeMounts"]}

    assert sandboxd()["securityContext"]["privileged"] is True
    assert "emptyDir" in volumes[mounts[env["E2BQ_SANDBOXD_STATE_DIR"]]]
    assert env["E2BQ_SANDBOXD_HOST"] == "0.0.0.0"
    assert env["E2BQ_SANDBOXD_API_KEY"] == {"secretKeyRef": {"name": "e2bq", "key": "sandboxd-api-key"}}
    assert sandboxd()["readinessProbe"]["httpGet"]["path"] == "/health"
    assert not pod.get("hostNetwork"), "sandboxd's firewall rules stay in the pod's network namespace"
    for folder in APPLIED.values():
        for each in pod_specs(documents(folder)):
            assert all("hostPath" not in v for v in each.get("volumes", []))


def test_the_worker_reaches_its_own_sandboxd_inside_the_pod_with_its_key() -> None:
    host = HostSettings.from_env(sandboxd_env())
    env = node_env()
    (port,) = [p["containerPort"] for p in sandboxd()["ports"]]

    assert port == host.port
    assert env["E2B_API_URL"] == env["E2B_SANDBOX_URL"] == f"http://127.0.0.1:{host.port}"
    assert env_of(node_worker())["E2B_API_KEY"] == env_of(sandboxd())["E2BQ_SANDBOXD_API_KEY"]
    assert env["E2B_API_KEY"] == host.api_key


def test_the_node_is_named_after_its_machine_and_clients_reach_it_at_the_pods_address() -> None:
    settings = Settings.from_env(node_env())
    name = MACHINE["spec.nodeName"]

    assert env_of(node_worker())["E2BQ_NODE"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert settings.provider == "local"
    assert settings.node == name
    assert settings.node_address == f"http://{MACHINE['status.podIP']}:{HostSettings.from_env(sandboxd_env()).port}"
    # Servers in its sandboxes are published at the same address.
    assert sandboxd_env()["E2BQ_SANDBOXD_PUBLIC_HOST"] == MACHINE["status.podIP"]
    assert worker_queues(settings.queue, settings.node) == [
        "e2bq", f"e2bq.node.{name}", "e2bq.batch", f"e2bq.node.{name}.batch"
    ]


def test_each_nodes_sandboxd_is_scraped_for_its_metrics() -> None:
    annotations = the_node()["spec"]["template"]["metadata"]["annotations"]
    (port,) = sandboxd()["ports"]
    service = find(NODES, "Service", the_node()["metadata"]["name"])
    labels = the_node()["spec"]["template"]["metadata"]["labels"]

    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == port["containerPort"]
    # Headless: it lists every node's pod for discovery and never balances calls between nodes.
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"].items() <= labels.items()
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [port["name"]]


def test_the_node_set_has_no_keda_and_no_worker_deployment() -> None:
    kinds = {d["kind"] for d in documents(NODES)}
    assert not kinds & KEDA_KINDS
    assert "Deployment" in kinds  # Flower's
    assert all(container(d)["args"][0] != "worker" for d in documents(NODES) if d["kind"] == "Deployment")


# -- E2B's cloud: stateless workers scaled by KEDA ----------------------------------------------


def test_cloud_workers_have_no_node_and_a_key_of_e2bs_cloud() -> None:
    env = resolved_env(container(cloud_worker()), MACHINE, secrets(CLOUD))
    settings = Settings.from_env(env)

    assert settings.provider == "e2b"
    assert "E2B_API_URL" not in env and "E2BQ_NODE" not in env
    assert env_of(container(cloud_worker()))["E2B_API_KEY"] == {
        "secretKeyRef": {"name": "e2bq-e2b-cloud", "key": "e2b-api-key"}
    }
    assert not {d["kind"] for d in documents(CLOUD)} & {"DaemonSet"}


def test_keda_scales_the_cloud_workers_on_the_queues_they_take() -> None:
    worker = cloud_worker()
    spec = scaled_object()["spec"]
    env = env_of(container(worker))
    queue = Settings.from_env({}).queue

    assert spec["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
    assert spec["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    assert spec["minReplicaCount"] >= 1, "a background job holds its worker while the queue is empty"
    assert env["E2BQ_QUEUE"] == queue
    # Celery keeps a queue's waiting tasks in a Redis list named after the queue.
    lists = sorted(t["metadata"]["listName"] for t in spec["triggers"])
    assert lists == sorted(worker_queues(queue, None)) == [queue, f"{queue}.batch"]

    redis = find(CLOUD, "Service", "redis")
    for trigger in spec["triggers"]:
        metadata = trigger["metadata"]
        assert trigger["type"] == "redis"
        assert int(metadata["listLength"]) >= 1
        host, port = metadata["address"].rsplit(":", 1)
        # KEDA runs in a namespace of its own: the address must name this one.
        assert host.startswith(f"redis.{kustomization(CLOUD)['namespace']}.svc")
        assert int(port) in [p["port"] for p in redis["spec"]["ports"]]
        assert env["E2BQ_REDIS_URL"].endswith(f"@redis:{port}/{metadata.get('databaseIndex', '0')}")


def test_keda_authenticates_with_the_password_redis_requires() -> None:
    redis = find(CLOUD, "StatefulSet", "redis")
    args = container(redis)["args"]
    variable = re.fullmatch(r"\$\((\w+)\)", args[args.index("--requirepass") + 1]).group(1)
    for trigger in scaled_object()["spec"]["triggers"]:
        ref = trigger["authenticationRef"]
        auth = find(CLOUD, ref.get("kind", "TriggerAuthentication"), ref["name"])
        (password,) = [r for r in auth["spec"]["secretTargetRef"] if r["parameter"] == "password"]
        secret = {"secretKeyRef": {"name": password["name"], "key": password["key"]}}
        assert env_of(container(redis))[variable] == secret


# -- everyone reaches Redis; only sandboxd is privileged; Flower has a login --------------------


def workers_and_flower() -> list[Any]:
    """A param (pod, container) for every e2bq process but sandboxd, in both sets."""
    found = []
    for workload in [the_node(), cloud_worker(), find(NODES, "Deployment", "flower")]:
        pod = pod_spec(workload)
        for c in containers(pod).values():
            if c["args"][0] != "sandboxd":
                found.append(pytest.param(pod, c, id=f"{workload['metadata']['name']}/{c['name']}"))
    return found


@pytest.mark.parametrize(("pod", "process"), workers_and_flower())
def test_workers_and_flower_run_unprivileged(pod: Document, process: Document) -> None:
    effective = security(pod, process)

    assert effective["runAsNonRoot"] is True
    assert effective["runAsUser"] != 0
    assert process["securityContext"]["allowPrivilegeEscalation"] is False
    assert process["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert "privileged" not in effective


@pytest.mark.parametrize(("pod", "process"), workers_and_flower())
def test_workers_and_flower_reach_redis_with_its_password(pod: Document, process: Document) -> None:
    env = env_of(process)

    assert "redis" not in [c["name"] for c in containers(pod).values()]
    assert env["REDIS_PASSWORD"] == {"secretKeyRef": {"name": "e2bq", "key": "redis-password"}}
    assert env["E2BQ_REDIS_URL"] == "redis://:$(REDIS_PASSWORD)@redis:6379/0"
    assert env["E2BQ_QUEUE"] == Settings.from_env({}).queue


def test_flower_requires_a_login() -> None:
    flower = find(NODES, "Deployment", "flower")

    login = {"secretKeyRef": {"name": "e2bq", "key": "flower-basic-auth"}}
    assert env_of(container(flower))["FLOWER_BASIC_AUTH"] == login
    assert "FLOWER_UNAUTHENTICATED_API" not in env_of(container(flower))
