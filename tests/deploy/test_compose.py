"""docker-compose.yml is valid Compose, its workers scale, and its secrets are required, not defaulted."""

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
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SCHEMA = Path(__file__).with_name("schemas") / "compose-spec.json"
E2BQ_SERVICES = ("sandboxd", "worker", "flower")
REQUIRED = re.compile(r"\$\{(\w+):\?[^}]*\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def schema_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'.'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def test_the_vendored_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA.read_text()))


def test_the_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    assert schema_errors(compose) == []


def test_the_schema_check_catches_a_misspelt_key(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["sandboxd"]["privilegd"] = True
    broken["services"]["worker"]["depends_on"]["redis"]["condition"] = "service_healty"

    errors = schema_errors(broken)

    assert any("privilegd" in error for error in errors), errors
    assert any("service_healty" in error for error in errors), errors


def test_every_e2bq_process_is_built_from_the_one_dockerfile(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"redis", *E2BQ_SERVICES}
    for name in E2BQ_SERVICES:
        build = compose["services"][name]["build"]
        assert (ROOT / build["context"] / build["dockerfile"]).resolve() == ROOT / "deploy" / "Dockerfile"
    commands = {name: compose["services"][name]["command"][0] for name in E2BQ_SERVICES}
    assert commands == {"sandboxd": "sandboxd", "worker": "worker", "flower": "flower"}


def test_workers_can_be_scaled(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    # A fixed name or a fixed host port would make a second replica fail to start.
    assert "container_name" not in worker
    assert "ports" not in worker
    assert "hostname" not in worker


def test_redis_requires_a_password_and_appends_to_disk(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = [str(part) for part in redis["command"]]

    password = command[command.index("--requirepass") + 1]
    assert REQUIRED.fullmatch(password) and REQUIRED.fullmatch(password).group(1) == "REDIS_PASSWORD"
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])


def test_workers_reach_redis_with_the_password_and_sandboxd_by_name(compose: dict[str, Any]) -> None:
    services = compose["services"]
    worker_env = services["worker"]["environment"]
    sandboxd_env = services["sandboxd"]["environment"]

    assert re.fullmatch(r"redis://:\$\{REDIS_PASSWORD:\?[^}]*\}@redis:6379/0", worker_env["E2BQ_REDIS_URL"])
    sandboxd_url = f"http://sandboxd:{sandboxd_env['E2BQ_SANDBOXD_PORT']}"
    assert worker_env["E2B_API_URL"] == worker_env["E2B_SANDBOX_URL"] == sandboxd_url
    key = REQUIRED.fullmatch(worker_env["E2B_API_KEY"])
    assert key and key.group(1) == REQUIRED.fullmatch(sandboxd_env["E2BQ_SANDBOXD_API_KEY"]).group(1)
    assert services["worker"]["depends_on"] == {
        "redis": {"condition": "service_healthy"},
        "sandboxd": {"condition": "service_healthy"},
    }


def test_sandboxd_is_privileged_listens_for_the_network_and_is_checked_on_health(
    compose: dict[str, Any],
) -> None:
    sandboxd = compose["services"]["sandboxd"]
    env = sandboxd["environment"]

    assert sandboxd["privileged"] is True
    assert sandboxd["user"] == "root"
    assert env["E2BQ_SANDBOXD_HOST"] == "0.0.0.0"
    assert env["E2BQ_SANDBOXD_PUBLIC_HOST"] == "sandboxd"
    health = " ".join(sandboxd["healthcheck"]["test"])
    assert f"http://127.0.0.1:{env['E2BQ_SANDBOXD_PORT']}/health" in health


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
    assert re.fullmatch(r"[A-Za-z0-9_-]+", example["REDIS_PASSWORD"]), "it goes into a URL unescaped"


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
        [*config, "--env-file", str(ENV_EXAMPLE), "config", "-q"], capture_output=True, text=True, env=env
    )
    assert accepted.returncode == 0, accepted.stderr

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
