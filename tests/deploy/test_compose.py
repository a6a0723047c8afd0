"""docker-compose.yml is valid Compose; each node's workers reach their own sandboxd and scale; its
secrets are required, not defaulted."""

from __future__ import annotations

import copy
import itertools
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from e2bq import Settings
from e2bq.queues import worker_queues
from e2bq.sandboxd.jail import idmap
from e2bq.sandboxd.settings import UID_RANGES, HostSettings
from tests.deploy import variables
from tests.deploy.compose import (
    COMPOSE,
    ENV_EXAMPLE,
    REQUIRED,
    ROOT,
    commands,
    env_example,
    environment,
    interpolate,
    load,
    nodes,
    published,
)

SCHEMA = Path(__file__).with_name("schemas") / "compose-spec.json"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load()


def schema_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'.'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def services_running(compose: dict[str, Any], process: str) -> list[str]:
    return sorted(name for name, command in commands(compose).items() if command == process)


def test_the_vendored_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA.read_text()))


def test_the_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    assert schema_errors(compose) == []


def test_the_schema_check_catches_a_misspelt_key(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["node1-sandboxd"]["privilegd"] = True
    broken["services"]["node1-worker"]["depends_on"]["redis"]["condition"] = "service_healty"

    errors = schema_errors(broken)

    assert any("privilegd" in error for error in errors), errors
    assert any("service_healty" in error for error in errors), errors


def test_every_e2bq_process_is_built_from_the_one_dockerfile(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"redis", *commands(compose)}
    assert sorted(set(commands(compose).values())) == ["flower", "sandboxd", "worker"]
    assert services_running(compose, "flower") == ["flower"]
    images = set()
    for name in commands(compose):
        build = services[name]["build"]
        assert (ROOT / build["context"] / build["dockerfile"]).resolve() == ROOT / "deploy" / "Dockerfile"
        images.add(services[name]["image"])
    assert len(images) == 1, "one image, built once, runs every e2bq process"


# -- nodes -------------------------------------------------------------------------------------


def test_there_are_two_nodes_each_with_a_sandboxd_of_its_own(compose: dict[str, Any]) -> None:
    found = nodes(compose)

    assert sorted(found) == ["node1", "node2"]
    assert sorted(node.sandboxd for node in found.values()) == services_running(compose, "sandboxd")
    for node in found.values():
        assert node.workers, node


def test_every_worker_of_a_node_points_at_its_own_sandboxd(compose: dict[str, Any]) -> None:
    for node in nodes(compose).values():
        host = HostSettings.from_env(environment(compose["services"][node.sandboxd]))
        for worker in node.workers:
            env = environment(compose["services"][worker])
            own = f"http://{node.sandboxd}:{host.port}"
            assert env["E2B_API_URL"] == env["E2B_SANDBOX_URL"] == own, worker
            assert env["E2B_API_KEY"] == host.api_key, worker
            assert compose["services"][worker]["depends_on"] == {
                "redis": {"condition": "service_healthy"},
                node.sandboxd: {"condition": "service_healthy"},
            }


def test_every_node_is_reached_by_clients_at_its_sandboxds_port_on_this_host(compose: dict[str, Any]) -> None:
    addresses = set()
    for node in nodes(compose).values():
        sandboxd = compose["services"][node.sandboxd]
        port = published(sandboxd, HostSettings.from_env(environment(sandboxd)).port)
        for worker in node.workers:
            settings = Settings.from_env(environment(compose["services"][worker]))
            assert settings.node == node.name
            assert settings.node_address == f"http://127.0.0.1:{port}"
            addresses.add(settings.node_address)
    assert len(addresses) == len(nodes(compose))


def test_each_nodes_workers_take_its_own_queues(compose: dict[str, Any]) -> None:
    for node in nodes(compose).values():
        for worker in node.workers:
            settings = Settings.from_env(environment(compose["services"][worker]))
            assert settings.provider == "local"
            assert worker_queues(settings.queue, settings.node) == [
                "e2bq", f"e2bq.node.{node.name}", "e2bq.batch", f"e2bq.node.{node.name}.batch"
            ]


def test_workers_can_be_scaled(compose: dict[str, Any]) -> None:
    for worker in services_running(compose, "worker"):
        service = compose["services"][worker]
        # A fixed name or a fixed host port would make a second replica fail to start.
        assert "container_name" not in service
        assert "ports" not in service
        assert "hostname" not in service


def test_each_sandboxd_is_privileged_listens_for_the_network_and_is_checked_on_health(
    compose: dict[str, Any],
) -> None:
    for name in services_running(compose, "sandboxd"):
        sandboxd = compose["services"][name]
        env = environment(sandboxd)
        host = HostSettings.from_env(env)

        assert sandboxd["privileged"] is True
        assert sandboxd["user"] == "root"
        assert host.host == "0.0.0.0"
        # URLs of servers in its sandboxes name it: they answer inside the project's network.
        assert host.public_host == name
        health = " ".join(sandboxd["healthcheck"]["test"])
        assert f"http://127.0.0.1:{host.port}/health" in health


def test_nodes_share_nothing_but_the_key(compose: dict[str, Any]) -> None:
    hosts = [compose["services"][name] for name in services_running(compose, "sandboxd")]
    settings = [HostSettings.from_env(environment(host)) for host in hosts]
    state = [
        next(v.split(":")[0] for v in host["volumes"] if v.endswith(f":{s.state_dir}"))
        for host, s in zip(hosts, settings, strict=True)
    ]

    assert len(set(state)) == len(hosts), "each sandboxd keeps its state on a volume of its own"
    assert set(state) <= set(compose["volumes"])
    # Sandboxes get host uids from sandbox_uid + 1 upwards: ranges of different nodes never meet.
    uids = sorted(s.sandbox_uid for s in settings)
    assert all(b - a >= 1000 for a, b in itertools.pairwise(uids)), uids
    # Sandboxes on templates take 65536-id ranges from uid_range_base, UID_RANGES of them at most.
    bases = sorted(s.uid_range_base for s in settings)
    assert all(b - a >= UID_RANGES * idmap.RANGE_SIZE for a, b in itertools.pairwise(bases)), bases
    assert min(bases) >= max(uids) + 1000
    assert len({s.api_key for s in settings}) == 1, "clients reach every node with one key"


def test_redis_requires_a_password_and_appends_to_disk(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = [str(part) for part in redis["command"]]

    password = command[command.index("--requirepass") + 1]
    assert REQUIRED.fullmatch(password) and REQUIRED.fullmatch(password).group(1) == "REDIS_PASSWORD"
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])


def test_workers_and_flower_reach_redis_with_the_password(compose: dict[str, Any]) -> None:
    password = env_example()["REDIS_PASSWORD"]
    for name in [*services_running(compose, "worker"), "flower"]:
        raw = compose["services"][name]["environment"]["E2BQ_REDIS_URL"]
        assert REQUIRED.search(raw) and REQUIRED.search(raw).group(1) == "REDIS_PASSWORD"
        assert Settings.from_env(environment(compose["services"][name])).redis_url == (
            f"redis://:{password}@redis:6379/0"
        )


def test_every_e2bq_variable_set_is_one_e2bq_reads(compose: dict[str, Any]) -> None:
    for name in commands(compose):
        assert variables.unknown(compose["services"][name].get("environment", {})) == set(), name


def test_flower_requires_a_login(compose: dict[str, Any]) -> None:
    flower = compose["services"]["flower"]
    auth = REQUIRED.fullmatch(flower["environment"]["FLOWER_BASIC_AUTH"])

    # Flower takes any FLOWER_<OPTION> variable as its --<option>.
    assert auth and auth.group(1) == "FLOWER_BASIC_AUTH"
    assert "FLOWER_UNAUTHENTICATED_API" not in flower["environment"]


def test_env_example_sets_every_variable_compose_requires() -> None:
    required = set(REQUIRED.findall(COMPOSE.read_text()))
    example = env_example()

    assert required == {"REDIS_PASSWORD", "E2BQ_SANDBOXD_API_KEY", "FLOWER_BASIC_AUTH"}
    assert {name for name in required if example.get(name)} == required
    # The tests read the file through this interpolation: it refuses and defaults as Compose does.
    with pytest.raises(KeyError, match="REDIS_PASSWORD"):
        interpolate("${REDIS_PASSWORD:?set it}", {})
    assert interpolate("${NODE9_PORT:-1}:${E2BQ_QUEUE-q}:${A:-a}", {"E2BQ_QUEUE": "", "A": ""}) == "1::a"


def compose_cli() -> list[str] | None:
    """``docker compose`` (the plugin), else a standalone Compose v2 ``docker-compose``."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    if standalone:
        version = subprocess.run([standalone, "version"], capture_output=True, text=True)
        if version.returncode == 0 and " v2." in version.stdout:
            return [standalone]
    return None


def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    cli = compose_cli()
    if cli is None:
        pytest.skip("no Docker Compose v2 here (neither the `docker compose` plugin nor `docker-compose`)")
    config = [*cli, "--project-directory", str(ROOT), "-f", str(COMPOSE)]
    # Only the env files given below may supply the variables (a machine's own would hide a refusal).
    required = set(REQUIRED.findall(COMPOSE.read_text()))
    env = {k: v for k, v in os.environ.items() if k not in required}

    accepted = subprocess.run(
        [*config, "--env-file", str(ENV_EXAMPLE), "config", "--format", "json"],
        capture_output=True, text=True, env=env,
    )
    assert accepted.returncode == 0, accepted.stderr
    # Compose's own interpolation and merge keys give what these tests read.
    services = json.loads(accepted.stdout)["services"]
    ours = load()
    for name in commands(ours):
        assert services[name]["environment"] == environment(ours["services"][name]), name

    without_password = tmp_path / "no-password.env"
    without_password.write_text(
        "".join(f"{k}={v}\n" for k, v in env_example().items() if k != "REDIS_PASSWORD")
    )
    refused = subprocess.run(
        [*config, "--env-file", str(without_password), "config", "-q"],
        capture_output=True, text=True, env=env,
    )
    assert refused.returncode != 0
    assert "REDIS_PASSWORD" in refused.stderr
