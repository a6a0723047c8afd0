"""The one way e2bq connects to Redis, and the one place Redis' errors become e2bq's.

Every client comes from :func:`connect`, with one retry policy: a command that meets a dropped
connection reconnects and is retried for about 10 s (a Redis restart) before it fails. A store
method that still fails raises a :class:`~e2bq.errors.QueueError` (or a ConfigurationError for
refused credentials) that says what to check, chained to redis-py's exception.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Concatenate, ParamSpec, Protocol, TypeVar

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from ..config import Settings
from ..errors import ConfigurationError, E2BQError, QueueError

P = ParamSpec("P")
R = TypeVar("R")


def connect(settings: Settings, *, decode: bool = True) -> redis.Redis:
    """A client for e2bq's keys: ``str`` in and out, or raw ``bytes`` with ``decode=False`` (file chunks)."""
    try:
        return redis.Redis.from_url(
            settings.redis_url,
            decode_responses=decode,
            socket_connect_timeout=5,
            health_check_interval=30,
            retry=Retry(ExponentialBackoff(cap=2, base=0.1), retries=8),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        )
    except ValueError as exc:
        raise ConfigurationError(
            f"E2BQ_REDIS_URL {settings.redis_location!r} is not a Redis URL ({exc}): "
            "use redis://[user:password@]host:port/db, rediss:// for TLS, or unix:///path/to/socket"
        ) from exc


def translate(exc: redis.RedisError, settings: Settings) -> E2BQError:
    """The e2bq error for a redis-py exception, with a message that says what to check."""
    where = f"Redis at {settings.redis_location}"
    if isinstance(exc, redis.AuthenticationError):
        return ConfigurationError(
            f"{where} refused e2bq's credentials ({exc}): check the user and password in E2BQ_REDIS_URL"
        )
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return QueueError(
            f"cannot reach {where} ({exc}): check that redis-server is running there and that "
            "E2BQ_REDIS_URL points at it"
        )
    if isinstance(exc, redis.ResponseError):
        return QueueError(
            f"{where} refused a command ({exc}): check that E2BQ_REDIS_URL names a writable primary "
            "with memory to spare, and that its user may run e2bq's commands"
        )
    return QueueError(f"{where} failed ({type(exc).__name__}: {exc}): check the Redis server's log")


@contextlib.contextmanager
def translated(settings: Settings) -> Iterator[None]:
    """Raise redis-py's exceptions from the block as e2bq errors (see :func:`translate`)."""
    try:
        yield
    except redis.RedisError as exc:
        raise translate(exc, settings) from exc


class _Store(Protocol):
    settings: Settings


S = TypeVar("S", bound=_Store)


def translates_errors(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """A store method that raises e2bq errors, never redis-py's (the store's ``settings`` name Redis)."""

    @functools.wraps(method)
    def wrapper(store: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with translated(store.settings):
            return method(store, *args, **kwargs)

    return wrapper


def text(reply: bytes | str) -> str:
    """A reply of a decoding client as ``str``: redis-py types every reply ``bytes | str``."""
    return reply.decode() if isinstance(reply, bytes) else reply
