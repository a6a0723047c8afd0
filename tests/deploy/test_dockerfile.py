"""deploy/Dockerfile agrees with the project: the Makefile's system packages, the files `pip install`
needs, the runtime's place, an unprivileged user that the Kubernetes manifests name, `e2bq` as the
entrypoint. (No Docker engine runs the build here; this reads the file as the builder would.)"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path

from e2bq.sandboxd.settings import DEFAULT_RUNTIME
from tests.deploy.k8s import APPLIED, containers, documents, pod_specs, security

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"

Instruction = tuple[str, str]


def instructions() -> list[Instruction]:
    """(INSTRUCTION, arguments) in order, with continuation lines joined and comments dropped."""
    found: list[Instruction] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, arguments = pending.strip().partition(" ")
        found.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the file ends inside a continued line"
    return found


def arguments_of(keyword: str) -> list[str]:
    return [arguments for name, arguments in instructions() if name == keyword]


def test_it_builds_on_debian_bookworm_slim() -> None:
    assert arguments_of("FROM") == ["debian:bookworm-slim"]


def test_it_installs_the_makefiles_system_packages_less_the_redis_server() -> None:
    # continued lines joined, as make does
    makefile = re.sub(r"\\\n\s*", " ", (ROOT / "Makefile").read_text())
    wanted = set(re.search(r"^SYSTEM_PACKAGES := (.+)$", makefile, re.MULTILINE).group(1).split())
    installed: set[str] = set()
    for run in arguments_of("RUN"):
        for command in run.split("&&"):
            words = shlex.split(command)
            if words[:2] == ["apt-get", "install"]:
                installed |= {w for w in words[2:] if not w.startswith("-")}

    assert wanted - {"redis-server"} <= installed
    assert "redis-server" not in installed, "Redis runs in a container of its own"
    assert "redis-tools" in installed


def test_it_copies_everything_pip_install_needs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    copied: set[str] = set()
    for arguments in arguments_of("COPY"):
        *sources, _ = arguments.split()
        for source in sources:
            assert (ROOT / source).exists(), source
            copied.add(source)

    assert {"pyproject.toml", project["project"]["readme"]} <= copied
    for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]:
        assert pattern.rstrip("*") in copied, pattern
    for package, files in project["tool"]["setuptools"]["package-data"].items():
        for name in files:
            assert any((ROOT / package).glob(name)), name  # a name may be a glob
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored, "a developer's .env (secrets) must not reach the image"
    assert not set(ignored) & copied


def test_it_builds_the_sandbox_runtime_where_sandboxd_looks_for_it() -> None:
    runs = " ".join(arguments_of("RUN"))

    assert re.search(rf"\be2bq sandboxd install-runtime --target {re.escape(DEFAULT_RUNTIME)}\b", runs)


def test_it_installs_exactly_the_host_lock_then_e2bq_without_dependencies() -> None:
    runs = arguments_of("RUN")
    lock = next(i for i, run in enumerate(runs) if "--require-hashes" in run)
    project = next(i for i, run in enumerate(runs) if re.search(r"\bpip install --no-deps\b.* /src\b", run))

    assert "pip install --require-hashes --no-deps -r /src/requirements/main.txt" in runs[lock]
    assert "--no-build-isolation" in runs[project], "the build backend comes from the lock too"
    assert lock < project
    assert "requirements/main.txt" in " ".join(arguments_of("COPY"))


def test_processes_run_unprivileged_by_default_as_the_manifests_expect() -> None:
    user = arguments_of("USER")[-1]
    uid = user.split(":")[0]

    assert uid.isdigit() and int(uid) != 0, "numeric, so Kubernetes can check runAsNonRoot"
    checked = set()
    for folder in APPLIED.values():
        for pod in pod_specs(documents(folder)):
            for container in containers(pod).values():
                if container["image"] == "e2bq" and container["args"][0] != "sandboxd":
                    assert security(pod, container)["runAsUser"] == int(uid), container["name"]
                    checked.add(container["args"][0])
    assert checked == {"worker", "flower"}


def test_the_entrypoint_is_e2bq_under_an_init() -> None:
    (entrypoint,) = arguments_of("ENTRYPOINT")
    words = json.loads(entrypoint)

    assert words[-1] == "e2bq"
    assert words[0] == "/usr/bin/tini", "sandboxd's jails leave orphans someone must reap"
    path = next(a for a in arguments_of("ENV") if a.startswith("PATH="))
    assert "/opt/e2bq/venv/bin" in path, "where `pip install` put the e2bq command"
