"""The one way e2bq connects to Redis, and the one place Redis' errors become e2bq's.

Every client comes from :func:`connect`, with one retry policy: a command that meets a dropped
connection reconnects and is retried for about 10 s (a Redis restart) before it fails. A store
method that still fails raises a :class:`~e2bq.errors.QueueError` (or a ConfigurationError for
refused credentials) that says what to check, chained to redis-py's exception.

Behind Sentinel (a ``sentinel://`` ``E2BQ_REDIS_URL``) the client asks the Sentinels for the master
at every connection, and a command that meets a dead master keeps being retried, about every
half second for up to ~30 s, against whichever master they name: through a failover (the
Sentinels' down-after time plus their election, ~2.4 s with ``down-after-milliseconds 1000``) it
succeeds on the promoted replica. :func:`replicated` makes a write wait until replicas have it
(Redis ``WAIT``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, cast

import redis
from redis.backoff import ExponentialBackoff
from redis.commands.core import Script
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelManagedConnection

from ..config import Settings
from ..errors import ConfigurationError, E2BQError, QueueError
from ..sentinel import SentinelLocation

P = ParamSpec("P")
R = TypeVar("R")
log = logging.getLogger(__name__)
_Sentinel = cast("Callable[..., Any]", Sentinel)  # redis-py leaves its constructor unannotated

# Behind Sentinel: a command whose connection fails asks the Sentinels for the master again and
# retries, up to 60 times 0.1 s to 0.5 s apart: a failover shorter than ~30 s (the Celery sends'
# bound too) is ridden through and noticed within 0.5 s of its end; with no master for that long
# the command fails.
SENTINEL_RETRIES = 60
SENTINEL_TIMEOUT = 2.0  # seconds to reach and hear from one Sentinel before trying the next


def connect(settings: Settings, *, decode: bool = True) -> redis.Redis:
    """A client for e2bq's keys: ``str`` in and out, or raw ``bytes`` with ``decode=False`` (file chunks).

    A Sentinel URL gives a client of the master the Sentinels name, whichever that is now."""
    location = settings.sentinel
    if location is not None:
        return _master(location, decode=decode)
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


class _MasterConnection(SentinelManagedConnection):
    """A connection to whichever server the Sentinels name master now, also when it reconnects.

    redis-py's own asks the Sentinels only in ``connect()``; a connection that dropped and is used
    again reconnects in ``send_packed_command`` through ``connect_check_health``, to the address it
    had, retrying that one for the whole retry policy (~30 s here) while a replica has long been
    promoted. Here that reconnect asks the Sentinels again, at every attempt."""

    def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
        if self._sock:
            return
        if retry_socket_connect:  # not from connect_to, which names the address itself
            cast("Callable[[], None]", self.connect)()  # redis-py leaves it unannotated
            return
        super().connect_check_health(check_health=check_health, retry_socket_connect=False)


def _master(location: SentinelLocation, *, decode: bool) -> redis.Redis:
    sentinels = _Sentinel(
        list(location.sentinels),
        sentinel_kwargs={"socket_timeout": SENTINEL_TIMEOUT, "socket_connect_timeout": SENTINEL_TIMEOUT},
    )
    # redis-py's MasterNotFoundError (no master elected yet) is a ConnectionError: retried too
    master = sentinels.master_for(
        location.master_name,
        redis_class=redis.Redis,
        db=location.db,
        username=location.username,
        password=location.password,
        decode_responses=decode,
        socket_connect_timeout=5,
        socket_keepalive=True,  # a master whose host vanished (no reset) is noticed by the kernel
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.1), retries=SENTINEL_RETRIES),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        connection_class=_MasterConnection,
    )
    return cast(redis.Redis, master)


def replicated(
    settings: Settings, client: redis.Redis, script: Script, *, keys: Sequence[str], args: Sequence[Any]
) -> Any:
    """Run ``script`` and return its reply once ``settings.wait_replicas`` replicas have its writes.

    Replication is asynchronous: a write the master acknowledged can be lost if the master dies and
    a replica that had not received it is promoted. ``WAIT`` after the write (on the same
    connection: WAIT covers the writes of its own connection) makes the loss window the time the
    replicas take to acknowledge, at most ``redis_wait_timeout`` seconds. With no replica to wait
    for this is the script alone; when fewer replicas answer in time, the write stands (it cannot
    be undone) and a warning says so.
    """
    replicas = settings.wait_replicas
    if replicas <= 0:
        return script(keys=keys, args=args)
    # EVAL, not EVALSHA: a replica promoted by a failover may not have the script cached
    pipe = client.pipeline(transaction=False)
    source = script.script if isinstance(script.script, str) else bytes(script.script).decode()
    pipe.eval(source, len(keys), *keys, *args)
    pipe.wait(replicas, int(settings.redis_wait_timeout * 1000))
    reply, acknowledged = pipe.execute()
    if int(acknowledged) < replicas:
        log.warning(
            "only %s of %s Redis replicas acknowledged a job's end within %g s: a failover now could "
            "lose it (check the replicas, or lower E2BQ_REDIS_WAIT_REPLICAS)",
            acknowledged, replicas, settings.redis_wait_timeout,
        )
    return reply


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
