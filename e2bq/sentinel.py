"""Redis behind Sentinel: what a ``sentinel://`` value of ``E2BQ_REDIS_URL`` says, read once.

The URL is kombu's own form, one ``sentinel://`` address per Sentinel joined by ``;``::

    sentinel://10.0.0.1:26379;sentinel://10.0.0.2:26379;sentinel://10.0.0.3:26379/0?master_name=mymaster

The master's name (Sentinel's ``sentinel monitor <name> ...``) comes from the ``master_name`` query
parameter or from ``E2BQ_REDIS_SENTINEL_MASTER``; giving both with different values, or neither, is a
:class:`~e2bq.errors.ConfigurationError`. A password (``sentinel://:secret@host:26379``) is the
master's and its replicas', as in kombu. The database (``/0``) may be written on any address; every
address that names one must name the same.

The broker, the result backend and the stores each follow the master through these Sentinels:
:meth:`SentinelLocation.celery_url` is the URL handed to kombu and Celery (no query: they take the
master's name from their transport options), :attr:`SentinelLocation.sentinels` what redis-py's
``Sentinel`` takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qs, quote, unquote, urlsplit

from .errors import ConfigurationError

SCHEME = "sentinel://"
DEFAULT_SENTINEL_PORT = 26379
_FORM = "sentinel://host1:26379;sentinel://host2:26379/0?master_name=mymaster"


def is_sentinel_url(url: str) -> bool:
    return url.strip().lower().startswith(SCHEME)


@dataclass(frozen=True, kw_only=True)
class SentinelLocation:
    """Where the Sentinels are and which master they watch.

    Attributes:
        sentinels: ``(host, port)`` of every Sentinel, in the URL's order.
        master_name: the name the Sentinels monitor the master under.
        db: the database number (0 unless the URL names one).
        username: the master's user (None: the default user).
        password: the master's password (None: none).
    """

    sentinels: tuple[tuple[str, int], ...]
    master_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None

    def celery_url(self) -> str:
        """The URL for kombu's ``sentinel`` transport and Celery's ``sentinel`` result backend.

        Every address carries the credentials and the database: kombu and Celery read both from the
        first address only, and it must not matter which Sentinel is written first."""
        auth = ""
        if self.username or self.password:
            auth = f"{quote(self.username or '', safe='')}:{quote(self.password or '', safe='')}@"
        return ";".join(f"{SCHEME}{auth}{_host(host)}:{port}/{self.db}" for host, port in self.sentinels)


def parse_sentinel_url(url: str, master_name: str | None = None) -> SentinelLocation:
    """The location a ``sentinel://`` URL names; ``master_name`` is ``E2BQ_REDIS_SENTINEL_MASTER``.

    >>> parse_sentinel_url("sentinel://a:26379;sentinel://b:26380/2?master_name=m").sentinels
    (('a', 26379), ('b', 26380))

    Raises ConfigurationError, saying what to write instead, for an address that is not
    ``sentinel://host[:port][/db]``, for addresses naming different databases or credentials, and
    for a master's name that is missing or given twice with different values.
    """
    sentinels: list[tuple[str, int]] = []
    dbs: set[int] = set()
    names: set[str] = set()
    credentials: set[tuple[str | None, str | None]] = set()
    for chunk in url.strip().split(";"):
        if not chunk.strip():
            continue
        parts = _split(chunk.strip())
        sentinels.append(_address(parts, chunk))
        if parts.path.strip("/"):
            dbs.add(_db(parts.path, chunk))
        for name in parse_qs(parts.query).get("master_name", []):
            names.add(name.strip())
        if parts.username or parts.password:
            credentials.add((_unquoted(parts.username), _unquoted(parts.password)))
    if not sentinels:
        raise ConfigurationError(f"E2BQ_REDIS_URL names no Sentinel: write it as {_FORM}")
    if len(dbs) > 1 or len(credentials) > 1:
        what = "databases" if len(dbs) > 1 else "credentials"
        raise ConfigurationError(
            f"E2BQ_REDIS_URL's Sentinel addresses name different {what}: they address one master, "
            "so write the same on each (or on one only)"
        )
    username, password = credentials.pop() if credentials else (None, None)
    return SentinelLocation(
        sentinels=tuple(sentinels),
        master_name=_master_name(names, master_name),
        db=dbs.pop() if dbs else 0,
        username=username or None,
        password=password,
    )


def _split(chunk: str) -> SplitResult:
    if not chunk.lower().startswith(SCHEME):
        raise ConfigurationError(
            f"E2BQ_REDIS_URL mixes {chunk.split('://')[0]!r} with sentinel:// addresses: every address "
            f"of a Sentinel URL is a Sentinel's, as in {_FORM}"
        )
    return urlsplit(chunk)


def _address(parts: SplitResult, chunk: str) -> tuple[str, int]:
    try:
        port = parts.port or DEFAULT_SENTINEL_PORT
    except ValueError as exc:
        raise ConfigurationError(f"E2BQ_REDIS_URL: {chunk!r} has a bad port ({exc})") from None
    hostname = parts.hostname
    if not hostname:
        raise ConfigurationError(f"E2BQ_REDIS_URL: {chunk!r} names no host: write it as {_FORM}")
    return hostname, port


def _db(path: str, chunk: str) -> int:
    raw = path.strip("/")
    if not raw.isdigit():
        raise ConfigurationError(f"E2BQ_REDIS_URL: {chunk!r} names database {raw!r}: use a number, e.g. /0")
    return int(raw)


def _master_name(from_url: set[str], from_setting: str | None) -> str:
    setting = (from_setting or "").strip()
    named = from_url | ({setting} if setting else set())
    named.discard("")
    if not named:
        raise ConfigurationError(
            "E2BQ_REDIS_URL is a Sentinel URL but names no master: add ?master_name=<name> to it "
            "(the name in the Sentinels' `sentinel monitor <name> ...` line), or set "
            "E2BQ_REDIS_SENTINEL_MASTER"
        )
    if len(named) > 1:
        raise ConfigurationError(
            f"the Sentinel master is named twice, differently ({', '.join(sorted(named))}): keep one of "
            "E2BQ_REDIS_URL's ?master_name= and E2BQ_REDIS_SENTINEL_MASTER, or make them agree"
        )
    return named.pop()


def _unquoted(value: str | None) -> str | None:
    return None if value is None else unquote(value)


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
