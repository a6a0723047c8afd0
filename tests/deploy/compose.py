"""docker-compose.yml as the tests read it: its services, its nodes, and their environment as Compose
would interpolate it from .env.example (no Docker engine runs here)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
REQUIRED = re.compile(r"\$\{(\w+):\?[^}]*\}")
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}
_VARIABLE = re.compile(r"\$\{(\w+)(?:(:?)([-?])([^}]*))?\}")

Service = dict[str, Any]


@dataclass(frozen=True)
class Node:
    """A node as the file declares it: the workers whose ``E2BQ_NODE`` is ``name``, and the
    sandboxd service their ``E2B_API_URL`` names."""

    name: str
    sandboxd: str
    workers: tuple[str, ...]


def load() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(text: str, values: Mapping[str, str]) -> str:
    """``text`` with its ``${...}`` replaced as Compose does; KeyError for a required one unset."""

    def value(match: re.Match[str]) -> str:
        name, colon, kind, argument = match.groups()
        present = values.get(name)
        is_set = present is not None and (present != "" or not colon)
        if kind == "?" and not is_set:
            raise KeyError(f"{name}: {argument}")
        if kind == "-" and not is_set:
            return argument
        return present or ""

    return _VARIABLE.sub(value, text)


def commands(compose: Mapping[str, Any]) -> dict[str, str]:
    """Each e2bq service's process (``sandboxd``, ``worker``, ``flower``), by service name."""
    return {
        name: service["command"][0]
        for name, service in compose["services"].items()
        if "build" in service
    }


def environment(service: Service, values: Mapping[str, str] | None = None) -> dict[str, str]:
    """The service's environment after interpolation (from .env.example unless ``values``)."""
    values = env_example() if values is None else values
    return {name: interpolate(str(raw), values) for name, raw in service.get("environment", {}).items()}


def url_host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port, url
    return parts.hostname, parts.port


def nodes(compose: Mapping[str, Any]) -> dict[str, Node]:
    """Every node, by name, from its workers' ``E2BQ_NODE`` and ``E2B_API_URL``."""
    workers: dict[str, list[str]] = {}
    sandboxd: dict[str, set[str]] = {}
    for name, process in commands(compose).items():
        if process == "worker":
            env = environment(compose["services"][name])
            workers.setdefault(env["E2BQ_NODE"], []).append(name)
            sandboxd.setdefault(env["E2BQ_NODE"], set()).add(url_host_port(env["E2B_API_URL"])[0])
    for node, hosts in sandboxd.items():
        assert len(hosts) == 1, f"the workers of node {node} reach different sandbox hosts: {hosts}"
    return {
        node: Node(name=node, sandboxd=next(iter(sandboxd[node])), workers=tuple(sorted(names)))
        for node, names in workers.items()
    }


def published(service: Service, container_port: int) -> int:
    """The port of this host that Compose maps to ``container_port`` of the service (from
    .env.example); AssertionError when it maps none or maps it to more than loopback."""
    found = []
    for mapping in service.get("ports", []):
        address, host_port, inner = interpolate(str(mapping), env_example()).rsplit(":", 2)
        if int(inner) == container_port:
            assert address == "127.0.0.1", f"{mapping}: published beyond this host's loopback"
            found.append(int(host_port))
    assert len(found) == 1, f"{container_port} is published {len(found)} times"
    return found[0]
