"""deploy/k8s: every manifest is valid for its kind, and the pieces refer to each other correctly.

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

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KEDA_SCHEMA = Path(__file__).with_name("schemas") / "keda-v1alpha1.json"
KUBERNETES_VERSION = "1.30.0"
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}

Document = dict[str, Any]


def kustomization() -> Document:
    return dict(yaml.safe_load((K8S / "kustomization.yaml").read_text()))


def manifests() -> list[tuple[str, Document]]:
    """(file name, document) for every document of every file the kustomization lists."""
    found = []
    for name in kustomization()["resources"]:
        for document in yaml.safe_load_all((K8S / name).read_text()):
            if document:
                found.append((name, document))
    return found


def validate(document: Document) -> None:
    """Raise if ``document`` is not valid for its kind (unknown fields included)."""
    if document["kind"] in KEDA_KINDS:
        jsonschema.Draft202012Validator(json.loads(KEDA_SCHEMA.read_text())).validate(document)
    else:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def find(kind: str, name: str) -> Document:
    matches = [d for _, d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def container(workload: Document) -> Document:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def env_of(workload: Document) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(workload).get("env", [])}


def pod_specs(documents: list[Document]) -> list[Document]:
    """The pod specs of the workloads (Deployments, StatefulSets) among ``documents``."""
    return [d["spec"]["template"]["spec"] for d in documents if "template" in d.get("spec", {})]


def scaled_object() -> Document:
    (scaled,) = [d for _, d in manifests() if d["kind"] == "ScaledObject"]
    return scaled


def the_worker() -> Document:
    workers = [d for _, d in manifests() if d["kind"] == "Deployment" and container(d)["args"][0] == "worker"]
    assert len(workers) == 1
    return workers[0]


def test_the_kustomization_lists_every_manifest() -> None:
    on_disk = {p.name for p in K8S.iterdir() if p.suffix in (".yaml", ".yml")} - {"kustomization.yaml"}
    listed = kustomization()["resources"]

    assert sorted(listed) == sorted(on_disk)
    assert len(set(listed)) == len(listed)


@pytest.mark.parametrize(
    "document",
    [pytest.param(d, id=f"{name}:{d['kind']}/{d['metadata']['name']}") for name, d in manifests()],
)
def test_each_manifest_is_valid(document: Document) -> None:
    validate(document)


def test_the_validators_reject_a_misspelt_field() -> None:
    worker = copy.deepcopy(the_worker())
    worker["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(worker)

    scaled = copy.deepcopy(find("ScaledObject", the_worker()["metadata"]["name"]))
    scaled["spec"]["triggers"][0]["metadata"]["listLength"] = 10  # KEDA wants strings here
    with pytest.raises(jsonschema.ValidationError):
        validate(scaled)


def test_kustomize_builds_the_whole_set() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: `kubectl kustomize` cannot be run here")
    built = subprocess.run(
        [kubectl, "kustomize", str(K8S)],
        capture_output=True, text=True, env={**os.environ, "KUBECONFIG": os.devnull}, check=False,
    )
    assert built.returncode == 0, built.stderr

    documents = [d for d in yaml.safe_load_all(built.stdout) if d]
    namespace = kustomization()["namespace"]
    assert len(documents) == len(manifests())
    for document in documents:
        validate(document)
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == namespace
    image = kustomization()["images"][0]
    images = {c["image"] for pod in pod_specs(documents) for c in pod["containers"]}
    assert f"{image['newName']}:{image['newTag']}" in images


def test_keda_scales_the_worker_deployment_on_the_celery_queue() -> None:
    worker = the_worker()
    spec = scaled_object()["spec"]
    (trigger,) = spec["triggers"]
    metadata = trigger["metadata"]

    assert spec["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
    assert spec["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    assert spec["minReplicaCount"] >= 1, "a background job holds its worker while the queue is empty"
    assert trigger["type"] == "redis"
    # Celery keeps a queue's waiting tasks in a Redis list named after the queue.
    assert metadata["listName"] == "e2bq" == Settings.from_env({}).queue == env_of(worker)["E2BQ_QUEUE"]
    assert int(metadata["listLength"]) >= 1

    host, port = metadata["address"].rsplit(":", 1)
    redis = find("Service", "redis")
    # KEDA runs in a namespace of its own: the address must name this one.
    assert host.startswith(f"redis.{kustomization()['namespace']}.svc")
    assert int(port) in [p["port"] for p in redis["spec"]["ports"]]
    redis_url = env_of(worker)["E2BQ_REDIS_URL"]
    assert redis_url.endswith(f"@redis:{port}/{metadata.get('databaseIndex', '0')}")


def test_keda_authenticates_with_the_password_redis_requires() -> None:
    reference = scaled_object()["spec"]["triggers"][0]["authenticationRef"]
    auth = find(reference.get("kind", "TriggerAuthentication"), reference["name"])
    (password,) = [r for r in auth["spec"]["secretTargetRef"] if r["parameter"] == "password"]

    redis = find("StatefulSet", "redis")
    args = container(redis)["args"]
    variable = re.fullmatch(r"\$\((\w+)\)", args[args.index("--requirepass") + 1]).group(1)
    assert env_of(redis)[variable] == {"secretKeyRef": {"name": password["name"], "key": password["key"]}}


def test_every_secret_reference_names_a_key_of_an_existing_secret() -> None:
    secrets = {d["metadata"]["name"]: d for _, d in manifests() if d["kind"] == "Secret"}
    documents = [d for _, d in manifests()]
    references = [
        e["valueFrom"]["secretKeyRef"]
        for pod in pod_specs(documents) for c in pod["containers"] for e in c.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    ]
    references += [
        {"name": r["name"], "key": r["key"]}
        for _, d in manifests() if d["kind"] == "TriggerAuthentication" for r in d["spec"]["secretTargetRef"]
    ]

    assert references
    for reference in references:
        assert reference["key"] in secrets[reference["name"]]["stringData"], reference
    # The example Secret holds placeholders, never something that looks like a chosen secret.
    for value in secrets["e2bq"]["stringData"].values():
        assert "REPLACE" in value or re.fullmatch(r"e2b_0{40}", value), value


def test_redis_persists_with_aof_on_a_claimed_volume() -> None:
    redis = find("StatefulSet", "redis")
    args = container(redis)["args"]
    claims = {c["metadata"]["name"] for c in redis["spec"]["volumeClaimTemplates"]}
    mounts = {m["mountPath"]: m["name"] for m in container(redis)["volumeMounts"]}

    assert args[args.index("--appendonly") + 1] == "yes"
    assert mounts[args[args.index("--dir") + 1]] in claims
    assert redis["spec"]["serviceName"] == "redis"


def test_sandboxd_is_privileged_keeps_state_in_an_empty_dir_and_never_uses_host_paths() -> None:
    sandboxd = find("Deployment", "sandboxd")
    pod = sandboxd["spec"]["template"]["spec"]
    env = env_of(sandboxd)
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["mountPath"]: m["name"] for m in container(sandboxd)["volumeMounts"]}

    assert container(sandboxd)["securityContext"]["privileged"] is True
    assert container(sandboxd)["args"] == ["sandboxd"]
    assert "emptyDir" in volumes[mounts[env["E2BQ_SANDBOXD_STATE_DIR"]]]
    assert env["E2BQ_SANDBOXD_HOST"] == "0.0.0.0"
    assert env["E2BQ_SANDBOXD_API_KEY"] == {"secretKeyRef": {"name": "e2bq", "key": "sandboxd-api-key"}}
    assert container(sandboxd)["readinessProbe"]["httpGet"]["path"] == "/health"
    for pod in pod_specs([d for _, d in manifests()]):
        assert all("hostPath" not in v for v in pod.get("volumes", []))


def test_workers_reach_sandboxd_through_its_service_with_its_key() -> None:
    env = env_of(the_worker())
    service = find("Service", "sandboxd")
    url = f"http://sandboxd:{service['spec']['ports'][0]['port']}"

    assert env["E2B_API_URL"] == env["E2B_SANDBOX_URL"] == url
    assert env["E2B_API_KEY"] == env_of(find("Deployment", "sandboxd"))["E2BQ_SANDBOXD_API_KEY"]


@pytest.mark.parametrize("name", ["e2bq-worker", "flower"])
def test_workers_and_flower_run_unprivileged(name: str) -> None:
    deployment = find("Deployment", name)
    pod = deployment["spec"]["template"]["spec"]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert container(deployment)["securityContext"]["allowPrivilegeEscalation"] is False


def test_flower_requires_a_login() -> None:
    flower = find("Deployment", "flower")

    login = {"secretKeyRef": {"name": "e2bq", "key": "flower-basic-auth"}}
    assert env_of(flower)["FLOWER_BASIC_AUTH"] == login
    assert "FLOWER_UNAUTHENTICATED_API" not in env_of(flower)
