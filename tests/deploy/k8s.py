"""deploy/k8s as the tests read it: the kustomizations, the documents each one applies, their pods'
containers, and a container's environment as the kubelet would resolve it (no cluster runs here)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
# What an operator applies: e2bq's own nodes, or E2B's cloud; both include base/.
APPLIED = {"nodes": K8S, "e2b-cloud": K8S / "e2b-cloud"}

Document = dict[str, Any]


def kustomization(folder: Path) -> Document:
    return dict(yaml.safe_load((folder / "kustomization.yaml").read_text()))


def folders() -> list[Path]:
    """Every folder under deploy/k8s that holds a kustomization."""
    return sorted(path.parent for path in K8S.rglob("kustomization.yaml"))


def manifests(folder: Path) -> list[tuple[Path, Document]]:
    """(file, document) for every document the kustomization in ``folder`` applies, those of the
    kustomizations it includes (a folder among its resources) first."""
    found = []
    for resource in kustomization(folder)["resources"]:
        path = (folder / resource).resolve()
        if path.is_dir():
            found += manifests(path)
            continue
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.append((path, document))
    return found


def documents(folder: Path) -> list[Document]:
    return [document for _, document in manifests(folder)]


def find(folder: Path, kind: str, name: str) -> Document:
    matches = [d for d in documents(folder) if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def pod_spec(workload: Document) -> Document:
    return dict(workload["spec"]["template"]["spec"])


def pod_specs(docs: list[Document]) -> list[Document]:
    """The pod specs of the workloads (Deployments, StatefulSets, DaemonSets) among ``docs``."""
    return [pod_spec(d) for d in docs if "template" in d.get("spec", {})]


def containers(pod: Document) -> dict[str, Document]:
    """Every container of the pod, init containers (and so sidecars) included, by name."""
    return {c["name"]: dict(c) for c in [*pod.get("initContainers", []), *pod["containers"]]}


def container(workload: Document, name: str | None = None) -> Document:
    """The workload's container ``name``; without a name, its only one."""
    found = containers(pod_spec(workload))
    if name is None:
        assert len(found) == 1, sorted(found)
        return next(iter(found.values()))
    return found[name]


def env_of(container: Document) -> dict[str, Any]:
    """Each variable's ``value``, or its ``valueFrom`` when it has one."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def security(pod: Document, container: Document) -> dict[str, Any]:
    """The container's effective security settings: the pod's, overridden by the container's."""
    return {**pod.get("securityContext", {}), **container.get("securityContext", {})}


def resolved_env(
    container: Document, fields: Mapping[str, str], secrets: Mapping[str, Mapping[str, str]]
) -> dict[str, str]:
    """The container's environment as the kubelet makes it: ``fieldRef`` values from ``fields``
    (by field path), ``secretKeyRef`` values from ``secrets`` (name → key → value), and each
    ``$(NAME)`` replaced by the value of NAME when NAME was defined earlier in the list."""
    env: dict[str, str] = {}
    for variable in container.get("env", []):
        source = variable.get("valueFrom")
        if source is None:
            value = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), variable["value"])
        elif "fieldRef" in source:
            value = fields[source["fieldRef"]["fieldPath"]]
        else:
            reference = source["secretKeyRef"]
            value = secrets[reference["name"]][reference["key"]]
        env[variable["name"]] = value
    return env


def secrets(folder: Path) -> dict[str, dict[str, str]]:
    """The Secrets the kustomization applies: name → key → (placeholder) value."""
    return {d["metadata"]["name"]: dict(d["stringData"]) for d in documents(folder) if d["kind"] == "Secret"}
