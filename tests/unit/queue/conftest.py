"""A private redis-server per test module, and settings pointing at it (a fresh namespace per test)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from e2bq.config import Settings
from tests.procs import redis_server


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(Path(tmp_path_factory.mktemp("redis"))) as url:
        yield url


@pytest.fixture
def empty_redis(redis_url: str) -> str:
    """The module's Redis, emptied for this test (the sets reapers watch are shared by every job)."""
    redis.Redis.from_url(redis_url).flushdb()
    return redis_url


@pytest.fixture
def settings(empty_redis: str) -> Settings:
    """Short heartbeats, so a lost worker is noticed within a second."""
    return Settings(redis_url=empty_redis, namespace=f"ns-{uuid.uuid4().hex[:8]}", heartbeat_ttl=1)


@pytest.fixture
def raw(empty_redis: str) -> redis.Redis:
    """A plain client, to look at (or break) what the stores keep."""
    return redis.Redis.from_url(empty_redis, decode_responses=True)
