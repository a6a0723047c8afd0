"""A Sentinel URL in E2BQ_REDIS_URL: how it is read, the errors that say what to fix, what the broker
and the result backend are told, and the WAIT after a job's end."""

from __future__ import annotations

import logging

import pytest
from celery.backends.redis import SentinelBackend

from e2bq.celery_app import make_celery
from e2bq.config import Settings
from e2bq.errors import ConfigurationError
from e2bq.sentinel import SentinelLocation, parse_sentinel_url
from e2bq.stores.jobs import JobStore

THREE = "sentinel://10.0.0.1:26379;sentinel://10.0.0.2:26380;sentinel://h3/2?master_name=mymaster"


def test_a_sentinel_url_names_every_sentinel_the_database_and_the_master() -> None:
    location = parse_sentinel_url(THREE)
    assert location == SentinelLocation(
        sentinels=(("10.0.0.1", 26379), ("10.0.0.2", 26380), ("h3", 26379)), master_name="mymaster", db=2
    )
    # kombu and Celery read the database and credentials from the first address: every one has them
    assert location.celery_url() == "sentinel://10.0.0.1:26379/2;sentinel://10.0.0.2:26380/2;sentinel://h3:26379/2"


def test_the_master_name_may_come_from_its_own_setting() -> None:
    settings = Settings.from_env(
        {"E2BQ_REDIS_URL": "sentinel://a:1;sentinel://b:2", "E2BQ_REDIS_SENTINEL_MASTER": "cache"}
    )
    assert settings.sentinel is not None
    assert (settings.sentinel.master_name, settings.sentinel.db) == ("cache", 0)
    # the same name twice is no conflict
    assert parse_sentinel_url("sentinel://a:1?master_name=cache", "cache").master_name == "cache"


def test_a_missing_master_name_is_an_error_that_says_where_to_put_it() -> None:
    expected = r"names no master.*\?master_name=.*E2BQ_REDIS_SENTINEL_MASTER"
    with pytest.raises(ConfigurationError, match=expected):
        Settings.from_env({"E2BQ_REDIS_URL": "sentinel://a:26379;sentinel://b:26379/0"})


@pytest.mark.parametrize(
    ("url", "master", "message"),
    [
        ("sentinel://a:1?master_name=x", "y", "named twice, differently"),
        ("sentinel://a:1/0;sentinel://b:2/1?master_name=x", None, "different databases"),
        ("sentinel://:p1@a:1;sentinel://:p2@b:2?master_name=x", None, "different credentials"),
        ("sentinel://a:1;redis://b:6379?master_name=x", None, "mixes 'redis'"),
        ("sentinel://a:notaport?master_name=x", None, "bad port"),
        ("sentinel://a:1/zero?master_name=x", None, "use a number"),
        ("sentinel://:1?master_name=x", None, "names no host"),
    ],
)
def test_a_malformed_sentinel_url_is_an_error_naming_the_fix(
    url: str, master: str | None, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_sentinel_url(url, master)


def test_credentials_are_the_masters_and_survive_quoting() -> None:
    location = parse_sentinel_url("sentinel://u:p%40ss@a:1;sentinel://b:2?master_name=m")
    assert (location.username, location.password) == ("u", "p@ss")
    assert location.celery_url() == "sentinel://u:p%40ss@a:1/0;sentinel://u:p%40ss@b:2/0"
    assert "p%40ss" not in Settings(redis_url="sentinel://:p%40ss@a:1;sentinel://:p%40ss@b:2").redis_location


def test_the_broker_and_the_result_backend_follow_the_named_master() -> None:
    app = make_celery(Settings(redis_url=THREE))
    assert app.conf.broker_url.startswith("sentinel://10.0.0.1:26379/2;")
    assert "master_name" not in app.conf.broker_url  # kombu would pass it on to redis-py
    options = app.conf.broker_transport_options
    assert options["master_name"] == "mymaster"
    assert options["visibility_timeout"] == 300  # e2bq's own options stay
    assert app.conf.result_backend_transport_options["master_name"] == "mymaster"
    assert app.conf.task_publish_retry_policy["max_retries"] > 3  # outlasts a failover
    assert isinstance(app.backend, SentinelBackend)


def test_wait_defaults_to_one_replica_behind_sentinel_and_none_without() -> None:
    assert Settings(redis_url=THREE).wait_replicas == 1
    assert Settings().wait_replicas == 0
    assert Settings.from_env({"E2BQ_REDIS_URL": THREE, "E2BQ_REDIS_WAIT_REPLICAS": "0"}).wait_replicas == 0
    with pytest.raises(ConfigurationError, match="E2BQ_REDIS_WAIT_TIMEOUT"):
        Settings.from_env({"E2BQ_REDIS_WAIT_TIMEOUT": "-1"})


def test_a_job_end_waited_for_missing_replicas_still_ends_it_and_warns(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # this Redis has no replica: WAIT times out, and the job's end stands
    waiting = Settings(redis_url=settings.redis_url, redis_wait_replicas=1, redis_wait_timeout=0.05)
    jobs = JobStore(waiting)
    jobs.create("job-1", "command", "sbx", settings.namespace)
    with caplog.at_level(logging.WARNING, logger="e2bq.stores.connection"):
        assert jobs.finish("job-1", "done", {"status": "success"}) is True
        assert jobs.finish("job-1", "error", None) is False  # ended once
    record = jobs.get("job-1")
    assert record is not None and record["status"] == "done"
    assert "only 0 of 1 Redis replicas acknowledged" in caplog.text
    jobs.create("job-2", "command", "sbx", settings.namespace)
    assert jobs.cancel("job-2") is True
    assert jobs.is_cancelled("job-2")
