"""Settings: one frozen object that names every environment variable, read when constructed."""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar, cast

from .errors import ConfigurationError
from .queues import SERVES, Serves
from .sentinel import SentinelLocation, is_sentinel_url, parse_sentinel_url
from .types import Provider

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
N = TypeVar("N", int, float)


@dataclass(frozen=True)
class Settings:
    """How clients and workers find Redis and the sandbox provider, and their time bounds.

    Environment variables (explicit arguments > these > defaults; seconds everywhere):

    - ``E2BQ_REDIS_URL``: broker, result backend, registry and job store (``redis://127.0.0.1:6379/0``;
      ``rediss://`` and passwords in the URL work). A Sentinel URL,
      ``sentinel://host1:26379;sentinel://host2:26379/0?master_name=mymaster``, makes every part
      follow the master Sentinel names through a failover (see ``e2bq.sentinel``).
    - ``E2BQ_REDIS_SENTINEL_MASTER``: the master's name, for a Sentinel URL without ``?master_name=``.
    - ``E2BQ_REDIS_WAIT_REPLICAS``: replicas that must have a job's end before it is reported ended
      (Redis ``WAIT``; default 1 with a Sentinel URL, else 0: no wait).
    - ``E2BQ_REDIS_WAIT_TIMEOUT``: seconds that wait lasts at most (1.0).
    - ``E2BQ_NAMESPACE``: the managers' namespace in the registry (``default``); processes that share it
      share managed sandboxes.
    - ``E2BQ_QUEUE``: the Celery queue tasks go to (``e2bq``).
    - ``E2BQ_JOB_TTL``: seconds a job record is kept after it is created (86400).
    - ``E2BQ_JOB_OUTPUT_MAX_BYTES``: bytes of a background job's output kept whole, over its stdout
      and stderr together (64 MiB, at most 256 MiB; read by workers); past it a marker line says
      where the output was cut.
    - ``E2B_API_KEY``: the provider's key (E2B cloud's, or the local sandboxd's).
    - ``E2B_API_URL`` / ``E2B_SANDBOX_URL``: a local sandboxd; when set, it is the provider.
    - ``E2BQ_CREATE_RATE`` / ``E2BQ_MAX_LIVE_SANDBOXES``: sandbox creates per second and live
      sandboxes at most, shared by every worker (E2B cloud: 1 and 20, its Hobby plan; a local
      sandboxd: 0, unshaped). Creates past them, or past every node's capacity, wait up to
      ``E2BQ_CREATE_WAIT`` seconds (120), then end with an error that says so.
    - ``E2BQ_VISIBILITY_TIMEOUT``: Redis broker's visibility timeout, seconds (300): how soon a task
      taken by a worker that died before starting it is handed out again.
    - ``E2BQ_WORKER_GRACE``: seconds a stopping worker lets running jobs finish (30; read by workers).
    - ``E2BQ_TAKEOVER_WAIT``: seconds a job whose worker was lost waits for another worker to take
      it over, counted from when a reader first finds it lost, before it ends ``error`` (60).
    - ``E2BQ_NODE``: the node a worker serves: the sandbox host its ``E2B_API_URL`` names (default:
      this machine's host name; read by workers of a local sandboxd).
    - ``E2BQ_NODE_URL``: that sandbox host's address as clients reach it, for ``SandboxSlot.sandbox``
      (default: ``E2B_API_URL``).
    - ``E2BQ_NODE_TIMEOUT``: seconds without a heartbeat after which a node is lost (15; at least 4,
      two of the workers' 2 s heartbeats).
    - ``E2BQ_WORKER_SERVES``: what a worker takes: ``all`` (default), ``interactive`` (synchronous
      calls, creates, kill_job) or ``batch`` (background jobs); see ``e2bq.queues``.
    - ``E2BQ_EVENTS_MAX``: job events the stream ``e2bq:events`` keeps, about (100000).
    - ``E2BQ_CALLBACK_SECRET``: the key that signs job-end callbacks (HMAC-SHA256); ``callback_url``
      is refused while it is unset. ``E2BQ_CALLBACK_ATTEMPTS`` (8), ``E2BQ_CALLBACK_MAX_SECONDS``
      (600), ``E2BQ_CALLBACK_BACKOFF`` (1) and ``E2BQ_CALLBACK_TIMEOUT`` (10) bound its delivery:
      attempts, seconds from the job's end, the first retry's delay (doubling each time, 60 at
      most), and one attempt's HTTP timeout (see ``e2bq.callbacks``).

    A value that is not a number of the right kind raises :class:`ConfigurationError` naming the
    variable.
    """

    redis_url: str = DEFAULT_REDIS_URL
    namespace: str = "default"
    queue: str = "e2bq"
    job_ttl: int = 86_400
    output_tail_bytes: int = 64 * 1024
    job_output_max_bytes: int = 64 * 1024 * 1024
    heartbeat_ttl: int = 15
    create_rate: float | None = None
    max_live_sandboxes: int | None = None
    create_wait: float = 120.0
    visibility_timeout: int = 300
    worker_grace: float = 30.0
    takeover_wait: float = 60.0
    transfer_chunk_bytes: int = 1024 * 1024
    transfer_window: int = 4
    e2b_api_key: str | None = None
    e2b_api_url: str | None = None
    e2b_sandbox_url: str | None = None
    node: str = field(default_factory=socket.gethostname)
    node_url: str | None = None
    node_timeout: float = 15.0
    worker_serves: Serves = "all"
    events_max: int = 100_000
    callback_secret: str | None = field(default=None, repr=False)
    callback_attempts: int = 8
    callback_max_seconds: float = 600.0
    callback_backoff: float = 1.0
    callback_timeout: float = 10.0
    redis_sentinel_master: str | None = None
    redis_wait_replicas: int | None = None
    redis_wait_timeout: float = 1.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``env`` (``os.environ`` by default); ``overrides`` that are not None win.

        >>> Settings.from_env({"E2BQ_QUEUE": "batch"}, namespace="team-a").queue
        'batch'
        """
        env = os.environ if env is None else env
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigurationError(f"unknown settings: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {
            "redis_url": env.get("E2BQ_REDIS_URL") or DEFAULT_REDIS_URL,
            "namespace": env.get("E2BQ_NAMESPACE") or "default",
            "queue": env.get("E2BQ_QUEUE") or "e2bq",
            "e2b_api_key": env.get("E2B_API_KEY") or None,
            "e2b_api_url": env.get("E2B_API_URL") or None,
            "e2b_sandbox_url": env.get("E2B_SANDBOX_URL") or env.get("E2B_API_URL") or None,
            "job_ttl": _number(env, "E2BQ_JOB_TTL", int, minimum=1),
            "job_output_max_bytes": _output_cap(env),
            "create_rate": _number(env, "E2BQ_CREATE_RATE", float, minimum=0),
            "max_live_sandboxes": _number(env, "E2BQ_MAX_LIVE_SANDBOXES", int, minimum=0),
            "visibility_timeout": _number(env, "E2BQ_VISIBILITY_TIMEOUT", int, minimum=1),
            "create_wait": _number(env, "E2BQ_CREATE_WAIT", float, minimum=0),
            "worker_grace": _number(env, "E2BQ_WORKER_GRACE", float, minimum=0),
            "takeover_wait": _number(env, "E2BQ_TAKEOVER_WAIT", float, minimum=0),
            "node": env.get("E2BQ_NODE") or socket.gethostname(),
            "node_url": env.get("E2BQ_NODE_URL") or None,
            # at least two of the 2 s heartbeats, or a busy node flaps between live and lost
            "node_timeout": _number(env, "E2BQ_NODE_TIMEOUT", float, minimum=4),
            "worker_serves": _serves(env.get("E2BQ_WORKER_SERVES") or None),
            "events_max": _number(env, "E2BQ_EVENTS_MAX", int, minimum=1),
            "callback_secret": env.get("E2BQ_CALLBACK_SECRET") or None,
            "callback_attempts": _number(env, "E2BQ_CALLBACK_ATTEMPTS", int, minimum=1),
            "callback_max_seconds": _number(env, "E2BQ_CALLBACK_MAX_SECONDS", float, minimum=0),
            "callback_backoff": _number(env, "E2BQ_CALLBACK_BACKOFF", float, minimum=0),
            "callback_timeout": _number(env, "E2BQ_CALLBACK_TIMEOUT", float, minimum=0.1),
            "redis_sentinel_master": env.get("E2BQ_REDIS_SENTINEL_MASTER") or None,
            "redis_wait_replicas": _number(env, "E2BQ_REDIS_WAIT_REPLICAS", int, minimum=0),
            "redis_wait_timeout": _number(env, "E2BQ_REDIS_WAIT_TIMEOUT", float, minimum=0),
        }
        values.update({name: value for name, value in overrides.items() if value is not None})
        settings = cls(**{name: value for name, value in values.items() if value is not None})
        _ = settings.sentinel  # a Sentinel URL without its master's name fails here, not at first use
        return settings

    def with_api_key(self, api_key: str | None) -> Settings:
        return self if api_key is None else replace(self, e2b_api_key=api_key)

    @property
    def redis_location(self) -> str:
        """``redis_url`` without its password, for messages and logs (each of a Sentinel URL's
        ``;``-separated addresses too)."""
        return ";".join(_without_password(part) for part in self.redis_url.split(";"))

    @property
    def sentinel(self) -> SentinelLocation | None:
        """The Sentinels and master ``redis_url`` names when it is a ``sentinel://`` URL, else None.

        Raises ConfigurationError when such a URL is malformed or names no master (see
        :func:`e2bq.sentinel.parse_sentinel_url`)."""
        if not is_sentinel_url(self.redis_url):
            return None
        return parse_sentinel_url(self.redis_url, self.redis_sentinel_master)

    @property
    def wait_replicas(self) -> int:
        """Replicas a job-ending write waits for: the setting, else 1 behind Sentinel and 0 without."""
        if self.redis_wait_replicas is not None:
            return self.redis_wait_replicas
        return 1 if is_sentinel_url(self.redis_url) else 0

    @property
    def provider(self) -> Provider:
        """``local`` when a sandboxd is configured, ``e2b`` (the cloud) when only a key is."""
        if self.e2b_api_url or self.e2b_sandbox_url:
            return "local"
        if self.e2b_api_key:
            return "e2b"
        raise ConfigurationError(
            "no sandbox provider configured: set E2B_API_KEY for E2B's cloud, or "
            "E2B_API_URL and E2B_SANDBOX_URL for a local `e2bq sandboxd` (`e2bq up` starts one)"
        )

    @property
    def creation_budget(self) -> tuple[float, int]:
        """(creates per second, live sandboxes at most) for this provider; 0 means unshaped."""
        cloud = self.provider == "e2b"
        rate = self.create_rate if self.create_rate is not None else (1.0 if cloud else 0.0)
        cap = self.max_live_sandboxes if self.max_live_sandboxes is not None else (20 if cloud else 0)
        return rate, cap

    @property
    def node_address(self) -> str | None:
        """Where clients reach this worker's sandbox host (None for E2B's cloud)."""
        return self.node_url or self.e2b_api_url or self.e2b_sandbox_url

    def sdk_options(self) -> dict[str, Any]:
        """Keyword options that point the e2b SDK at the provider."""
        options: dict[str, Any] = {}
        if self.e2b_api_key:
            options["api_key"] = self.e2b_api_key
        if self.e2b_api_url:
            options["api_url"] = self.e2b_api_url
        if self.e2b_sandbox_url:
            options["sandbox_url"] = self.e2b_sandbox_url
        return options


def _without_password(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


def _serves(raw: str | None) -> Serves | None:
    if raw is None:
        return None
    if raw not in SERVES:
        raise ConfigurationError(f"E2BQ_WORKER_SERVES={raw!r} is not one of {', '.join(SERVES)}")
    return cast(Serves, raw)


MAX_JOB_OUTPUT_BYTES = 256 * 1024 * 1024  # a stream is one Redis string, which holds 512 MiB at most


def _output_cap(env: Mapping[str, str]) -> int | None:
    cap = _number(env, "E2BQ_JOB_OUTPUT_MAX_BYTES", int, minimum=0)
    if cap is not None and cap > MAX_JOB_OUTPUT_BYTES:
        raise ConfigurationError(
            f"E2BQ_JOB_OUTPUT_MAX_BYTES={env['E2BQ_JOB_OUTPUT_MAX_BYTES'].strip()!r} is out of range: "
            f"set it to a whole number of bytes from 0 to {MAX_JOB_OUTPUT_BYTES} (256 MiB)"
        )
    return cap


def _number(env: Mapping[str, str], name: str, kind: Callable[[str], N], *, minimum: float) -> N | None:
    """The variable as a number of ``kind`` (None when unset or empty); a bad value names the variable."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    what = "a whole number" if kind is int else "a number"
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not {what}: set it to {what} >= {minimum:g}") from None
    if not math.isfinite(value) or value < minimum:
        raise ConfigurationError(f"{name}={raw!r} is out of range: set it to {what} >= {minimum:g}")
    return value
