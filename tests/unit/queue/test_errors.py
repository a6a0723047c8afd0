"""Errors from the e2b SDK and from redis become e2bq errors that say what to change."""

from __future__ import annotations

import uuid

import pytest
import redis
from e2b.exceptions import (
    AuthenticationException,
    FileNotFoundException,
    InvalidArgumentException,
    NotEnoughSpaceException,
    NotFoundException,
    RateLimitException,
    SandboxException,
    SandboxNotFoundException,
    SandboxNotRunningException,
    TimeoutException,
)

from e2bq.config import Settings
from e2bq.errors import (
    ConfigurationError,
    E2BQError,
    ExecutionTimeoutError,
    FileNotFoundInSandboxError,
    InvalidInputError,
    ProviderError,
    QueueError,
    SandboxNotFoundError,
)
from e2bq.stores.connection import connect, translate
from e2bq.stores.jobs import JobStore
from e2bq.stores.keys import job_key
from workers.translate import translate as translate_sdk_error

SDK_ERRORS = [
    (SandboxNotFoundException("sandbox sbx-1 not found"), SandboxNotFoundError, "is not running"),
    (SandboxNotRunningException("paused"), SandboxNotFoundError, "create a new one"),
    (TimeoutException("502: The sandbox sbx-1 was not found"), SandboxNotFoundError, "is not running"),
    (
        TimeoutException("The sandbox was killed while the request was in progress."),
        SandboxNotFoundError,
        "is not running",
    ),
    (FileNotFoundException("/home/user/x"), FileNotFoundInSandboxError, "no such file in sandbox sbx-1"),
    (NotFoundException("process 7"), SandboxNotFoundError, "not found in sandbox sbx-1"),
    (AuthenticationException("bad key"), ConfigurationError, "refused the API key"),
    (RateLimitException("429"), ProviderError, "rate limit"),
    (NotEnoughSpaceException("full"), ProviderError, "out of disk space"),
    (InvalidArgumentException("bad path"), InvalidInputError, "bad path"),
    (TimeoutException("slow"), ExecutionTimeoutError, "did not answer in time"),
    (SandboxException("boom"), ProviderError, "sandbox sbx-1: boom"),
    (ValueError("odd"), ProviderError, "ValueError: odd"),
]


@pytest.mark.parametrize(
    ("raised", "expected", "says"), SDK_ERRORS, ids=[type(e).__name__ for e, *_ in SDK_ERRORS]
)
def test_sdk_errors_become_e2bq_errors(raised: Exception, expected: type[E2BQError], says: str) -> None:
    error = translate_sdk_error(raised, "sbx-1")
    assert type(error) is expected
    assert says in str(error)


def test_an_e2bq_error_passes_through_unchanged() -> None:
    error = QueueError("already ours")
    assert translate_sdk_error(error) is error


REDIS_ERRORS = [
    (redis.ConnectionError("Connection refused"), QueueError, "check that redis-server is running"),
    (redis.TimeoutError("Timeout reading"), QueueError, "check that redis-server is running"),
    (redis.AuthenticationError("invalid username-password pair"), ConfigurationError, "user and password"),
    (redis.exceptions.ReadOnlyError("READONLY replica"), QueueError, "writable primary"),
    (redis.ResponseError("OOM command not allowed"), QueueError, "memory to spare"),
    (redis.RedisError("odd"), QueueError, "check the Redis server's log"),
]


@pytest.mark.parametrize(
    ("raised", "expected", "says"), REDIS_ERRORS, ids=[type(e).__name__ for e, *_ in REDIS_ERRORS]
)
def test_redis_errors_become_e2bq_errors_without_the_password(
    raised: redis.RedisError, expected: type[E2BQError], says: str
) -> None:
    settings = Settings(redis_url="redis://alice:s3cret@redis.example:6379/0")
    error = translate(raised, settings)
    assert type(error) is expected
    assert says in str(error)
    assert "redis://***@redis.example:6379/0" in str(error)
    assert "s3cret" not in str(error)


def test_a_store_raises_e2bq_errors_chained_to_redis(settings: Settings, raw: redis.Redis) -> None:
    job_id = uuid.uuid4().hex
    raw.set(job_key(job_id), "not a hash")  # Redis refuses HGETALL on it: WRONGTYPE
    with pytest.raises(QueueError, match="refused a command") as caught:
        JobStore(settings).get(job_id)
    assert isinstance(caught.value.__cause__, redis.ResponseError)


def test_a_url_that_is_not_redis_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="is not a Redis URL"):
        connect(Settings(redis_url="http://127.0.0.1:6379"))
