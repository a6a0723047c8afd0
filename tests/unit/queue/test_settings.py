"""Settings.from_env: explicit arguments > environment > defaults; a bad value names its variable."""

from __future__ import annotations

import socket

import pytest

from e2bq.config import DEFAULT_REDIS_URL, Settings
from e2bq.errors import ConfigurationError


def test_defaults_when_the_environment_is_empty() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert (settings.redis_url, settings.queue, settings.namespace) == (DEFAULT_REDIS_URL, "e2bq", "default")
    assert (settings.job_ttl, settings.worker_grace, settings.create_wait) == (86_400, 30.0, 120.0)
    assert (settings.node, settings.node_url, settings.node_timeout) == (socket.gethostname(), None, 15.0)


def test_the_environment_overrides_defaults_and_arguments_override_both() -> None:
    env = {
        "E2BQ_REDIS_URL": "redis://r:6379/3",
        "E2BQ_QUEUE": "batch",
        "E2BQ_NAMESPACE": "team",
        "E2BQ_JOB_TTL": "60",
        "E2BQ_WORKER_GRACE": "2.5",
        "E2BQ_CREATE_RATE": "0.5",
        "E2BQ_MAX_LIVE_SANDBOXES": "7",
        "E2BQ_VISIBILITY_TIMEOUT": "90",
        "E2BQ_CREATE_WAIT": "12",
        "E2BQ_NODE": "rack-1",
        "E2BQ_NODE_URL": "http://10.0.0.7:49999",
        "E2BQ_NODE_TIMEOUT": "5",
    }
    settings = Settings.from_env(env)
    assert settings.redis_url == "redis://r:6379/3"
    assert (settings.queue, settings.namespace) == ("batch", "team")
    assert (settings.job_ttl, settings.worker_grace) == (60, 2.5)
    assert (settings.create_rate, settings.max_live_sandboxes) == (0.5, 7)
    assert (settings.visibility_timeout, settings.create_wait) == (90, 12.0)
    assert (settings.node, settings.node_timeout) == ("rack-1", 5.0)
    assert settings.node_address == "http://10.0.0.7:49999"
    overridden = Settings.from_env(env, queue="interactive", worker_grace=0, namespace=None)
    assert (overridden.queue, overridden.worker_grace) == ("interactive", 0)
    assert overridden.namespace == "team"  # None means "not given"


def test_empty_variables_count_as_unset() -> None:
    assert Settings.from_env({"E2BQ_QUEUE": "", "E2BQ_JOB_TTL": " ", "E2B_API_KEY": ""}) == Settings()


def test_the_sandbox_url_falls_back_to_the_api_url_and_names_the_local_provider() -> None:
    settings = Settings.from_env({"E2B_API_URL": "http://127.0.0.1:49982", "E2B_API_KEY": "e2b_x"})
    assert settings.e2b_sandbox_url == "http://127.0.0.1:49982"
    assert settings.provider == "local"
    assert settings.creation_budget == (0.0, 0)
    cloud = Settings.from_env({"E2B_API_KEY": "e2b_x"})
    assert cloud.provider == "e2b"
    assert cloud.creation_budget == (1.0, 20)


def test_no_provider_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="E2B_API_KEY"):
        _ = Settings.from_env({}).provider


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("E2BQ_JOB_TTL", "a day", "is not a whole number"),
        ("E2BQ_JOB_TTL", "1.5", "is not a whole number"),
        ("E2BQ_JOB_TTL", "0", "out of range"),
        ("E2BQ_WORKER_GRACE", "-1", "out of range"),
        ("E2BQ_CREATE_RATE", "nan", "out of range"),
        ("E2BQ_CREATE_WAIT", "inf", "out of range"),
        ("E2BQ_MAX_LIVE_SANDBOXES", "many", "is not a whole number"),
        ("E2BQ_VISIBILITY_TIMEOUT", "5m", "is not a whole number"),
        ("E2BQ_NODE_TIMEOUT", "2", "out of range"),
        ("E2BQ_JOB_OUTPUT_MAX_BYTES", "64MiB", "is not a whole number"),
        ("E2BQ_JOB_OUTPUT_MAX_BYTES", "-1", "out of range"),
        ("E2BQ_JOB_OUTPUT_MAX_BYTES", "268435457", "out of range"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says) as caught:
        Settings.from_env({name: value})
    assert f"{name}={value!r}" in str(caught.value)


def test_the_job_output_cap_is_read_from_the_environment() -> None:
    assert Settings.from_env({}).job_output_max_bytes == 64 * 1024 * 1024
    assert Settings.from_env({"E2BQ_JOB_OUTPUT_MAX_BYTES": "1048576"}).job_output_max_bytes == 1024 * 1024
    largest = Settings.from_env({"E2BQ_JOB_OUTPUT_MAX_BYTES": "268435456"})
    assert largest.job_output_max_bytes == 256 * 1024 * 1024


def test_an_unknown_setting_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown settings: queue_name"):
        Settings.from_env({}, queue_name="x")


def test_the_redis_location_hides_the_password() -> None:
    assert Settings(redis_url="rediss://u:p@h:6380/1").redis_location == "rediss://***@h:6380/1"
    assert Settings(redis_url="redis://h:6379/0").redis_location == "redis://h:6379/0"
