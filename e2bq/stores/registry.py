"""The sandbox registry: which sandboxes each namespace manages, and its default one, in Redis.

Any process pointed at the same Redis and namespace sees the same managed sandboxes. A sandbox's
record expires a minute after the sandbox does; reads skip expired sandboxes without changing
anything, and the next :meth:`Registry.add` to the namespace forgets them. A paused sandbox does
not expire: its provider stopped its lifetime clock, so its record has no expiry until it is
resumed (:meth:`Registry.mark_paused`, :meth:`Registry.mark_running`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import redis

from ..config import Settings
from ..types import NodeRecord, SandboxEntry
from .connection import connect, text, translates_errors
from .keys import namespace_default_key, namespace_sandboxes_key, sandbox_key, shape_live_key

_GRACE = 60  # seconds a record outlives its sandbox's expiry, so late readers get a clear answer
_MIN_LEFT = 60  # seconds a resume gives at least (one paused at its timeout had none left)

# What a call to a namespace's default sandbox needs to know of it, read in one round trip (every
# call without a sandbox id asks, and each answer needs the previous one). KEYS[1] = the namespace's
# default pointer, KEYS[2] = the nodes hash; ARGV[1] = the sandbox key prefix: the record's key is
# known only from the pointer's value, as e2bq's single Redis allows. Returns false when there is no
# default, else {id, expires_at, node_started_at, the node's heartbeat, paused_at} (false for each
# one missing).
_DEFAULT = """
local id = redis.call('GET', KEYS[1])
if not id then return false end
local fields = redis.call('HMGET', ARGV[1] .. id, 'expires_at', 'node', 'node_started_at', 'paused_at')
local heartbeat = false
if fields[2] then
  local name = cjson.decode(fields[2])
  if type(name) == 'string' then heartbeat = redis.call('HGET', KEYS[2], name) end
end
return {id, fields[1], fields[3], heartbeat, fields[4]}
"""


@dataclass(frozen=True)
class DefaultSandbox:
    """A namespace's default sandbox as :meth:`Registry.default_sandbox` reads it."""

    sandbox_id: str
    live: bool  # its record exists and its timeout has not passed (or it is paused)
    node_started_at: float | None  # when the run of its host that made it began (None: not dated)
    heartbeat: NodeRecord | None  # its node's last heartbeat (None: no node, or never heard of)
    paused: bool = False  # paused through e2bq: kept across its host's restarts


class Registry:
    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = client or connect(settings)
        self._default = self.redis.register_script(_DEFAULT)

    @translates_errors
    def add(self, entry: SandboxEntry) -> None:
        """Record a sandbox in its namespace (and forget the namespace's expired ones)."""
        namespace = entry["namespace"]
        expired = self._expired(namespace)
        key = sandbox_key(entry["sandbox_id"])
        pipe = self.redis.pipeline()
        pipe.hset(key, mapping={k: json.dumps(v) for k, v in entry.items() if k != "is_default"})
        pipe.expireat(key, int(entry["expires_at"]) + _GRACE)
        if expired:
            pipe.srem(namespace_sandboxes_key(namespace), *expired)
        pipe.sadd(namespace_sandboxes_key(namespace), entry["sandbox_id"])
        pipe.zadd(shape_live_key(entry["provider"]), {entry["sandbox_id"]: entry["expires_at"]})
        pipe.execute()

    @translates_errors
    def get(self, sandbox_id: str) -> SandboxEntry | None:
        """The sandbox's entry; None when it is unknown or its timeout passed."""
        entry = _entry(self.redis.hgetall(sandbox_key(sandbox_id)))
        if entry is not None:
            entry["is_default"] = self.default(entry["namespace"]) == sandbox_id
        return entry

    @translates_errors
    def expires_at(self, sandbox_id: str) -> float | None:
        raw = self.redis.hget(sandbox_key(sandbox_id), "expires_at")
        return float(json.loads(raw)) if raw else None

    def _ids(self, namespace: str) -> list[str]:
        return [text(reply) for reply in self.redis.smembers(namespace_sandboxes_key(namespace))]

    def _expired(self, namespace: str) -> list[str]:
        """Ids the namespace still lists whose sandbox's timeout passed (or whose record is gone)."""
        ids = self._ids(namespace)
        pipe = self.redis.pipeline(transaction=False)
        for sandbox_id in ids:
            pipe.hmget(sandbox_key(sandbox_id), "expires_at", "paused_at")
        now = time.time()
        return [
            sid
            for sid, (raw, paused) in zip(ids, pipe.execute(), strict=True)
            if not raw or (json.loads(raw) < now and not _paused(paused))
        ]

    @translates_errors
    def remove(self, sandbox_id: str, *, shut_down: bool = False) -> None:
        """Forget a sandbox. When it was shut down on purpose its namespace has no default after;
        when it vanished (expired, its host restarted) the default pointer stays, and the
        toolkit replaces the default sandbox on next use."""
        entry = self.get(sandbox_id)
        pipe = self.redis.pipeline()
        pipe.delete(sandbox_key(sandbox_id))
        if entry is not None:
            # the default pointer stays: a toolkit seeing it dangle replaces the default sandbox
            pipe.srem(namespace_sandboxes_key(entry["namespace"]), sandbox_id)
            pipe.zrem(shape_live_key(entry["provider"]), sandbox_id)
            if shut_down and entry["is_default"]:
                pipe.delete(namespace_default_key(entry["namespace"]))
        pipe.execute()

    @translates_errors
    def extend(self, sandbox_id: str, expires_at: float) -> None:
        entry = self.get(sandbox_id)
        if entry is None or entry.get("paused_at"):
            return  # a paused sandbox's record has no expiry until it is resumed (mark_running)
        key = sandbox_key(sandbox_id)
        pipe = self.redis.pipeline()
        pipe.hset(key, "expires_at", json.dumps(expires_at))
        pipe.expireat(key, int(expires_at) + _GRACE)
        pipe.zadd(shape_live_key(entry["provider"]), {sandbox_id: expires_at})
        pipe.execute()

    @translates_errors
    def is_paused(self, sandbox_id: str) -> bool:
        """Whether the sandbox was paused through e2bq and not resumed since (one HGET)."""
        return _paused(self.redis.hget(sandbox_key(sandbox_id), "paused_at"))

    @translates_errors
    def mark_paused(self, sandbox_id: str, paused_at: float) -> None:
        """Record that the sandbox is paused: its record keeps, with no expiry, the seconds it had
        left (its provider stopped its clock), until :meth:`mark_running`."""
        key = sandbox_key(sandbox_id)
        raw = self.redis.hget(key, "expires_at")
        if raw is None:
            return  # not managed here
        left = max(_MIN_LEFT, int(json.loads(raw) - paused_at))
        pipe = self.redis.pipeline()
        pipe.hset(key, mapping={"paused_at": json.dumps(paused_at), "resume_timeout": json.dumps(left)})
        pipe.persist(key)
        pipe.execute()

    @translates_errors
    def mark_running(
        self, sandbox_id: str, expires_at: float, *, host_started_at: float | None = None
    ) -> None:
        """Record that the sandbox runs again (resumed), until ``expires_at``; ``host_started_at``
        is the run of its host that resumed it (a paused sandbox outlives its host's restarts)."""
        key = sandbox_key(sandbox_id)
        provider = self.redis.hget(key, "provider")
        if provider is None:
            return  # not managed here
        pipe = self.redis.pipeline()
        pipe.hdel(key, "paused_at", "resume_timeout")
        if host_started_at is not None:
            pipe.hset(key, "node_started_at", json.dumps(host_started_at))
        pipe.hset(key, "expires_at", json.dumps(expires_at))
        pipe.expireat(key, int(expires_at) + _GRACE)
        pipe.zadd(shape_live_key(json.loads(provider)), {sandbox_id: expires_at})
        pipe.execute()

    @translates_errors
    def set_default(self, namespace: str, sandbox_id: str) -> None:
        self.redis.set(namespace_default_key(namespace), sandbox_id)

    @translates_errors
    def clear_default(self, namespace: str) -> None:
        """The namespace has no default sandbox from now on."""
        self.redis.delete(namespace_default_key(namespace))

    @translates_errors
    def default(self, namespace: str) -> str | None:
        """The namespace's default sandbox id, even if that sandbox is gone (the toolkit replaces it)."""
        value = self.redis.get(namespace_default_key(namespace))
        return str(value) if value else None

    @translates_errors
    def default_sandbox(self, namespace: str, nodes_key: str) -> DefaultSandbox | None:
        """The namespace's default sandbox (None: it has none), whether it lives, and its node's
        last heartbeat (from the hash ``nodes_key``), all as they stand now, in one round trip."""
        found = self._default(keys=[namespace_default_key(namespace), nodes_key], args=[sandbox_key("")])
        if not found:
            return None
        default, expires_at, started_at, heartbeat, paused = found
        return DefaultSandbox(
            sandbox_id=text(default),
            live=expires_at is not None and (json.loads(expires_at) >= time.time() or _paused(paused)),
            node_started_at=json.loads(started_at) if started_at else None,
            heartbeat=cast(NodeRecord, json.loads(heartbeat)) if heartbeat else None,
            paused=_paused(paused),
        )

    @translates_errors
    def list(self, namespace: str) -> list[SandboxEntry]:
        """The namespace's live sandboxes, oldest first (two round trips, however many there are)."""
        ids = sorted(self._ids(namespace))
        pipe = self.redis.pipeline(transaction=False)
        for sandbox_id in ids:
            pipe.hgetall(sandbox_key(sandbox_id))
        pipe.get(namespace_default_key(namespace))
        *records, default = pipe.execute()
        entries = [entry for raw in records if (entry := _entry(raw)) is not None]
        for entry in entries:
            entry["is_default"] = entry["sandbox_id"] == default
        return sorted(entries, key=lambda e: e["created_at"])


def _entry(raw: Mapping[bytes | str, bytes | str]) -> SandboxEntry | None:
    """A registry record as an entry (``is_default`` still to be set); None when it is unknown or
    its timeout passed."""
    if not raw or "sandbox_id" not in raw:
        return None
    entry = {text(k): json.loads(v) for k, v in raw.items()}
    if entry["expires_at"] < time.time() and not entry.get("paused_at"):
        return None
    entry.setdefault("node", None)  # recorded before nodes existed
    entry.setdefault("node_url", None)
    entry["is_default"] = False
    return cast(SandboxEntry, entry)


def _paused(raw: bytes | str | None) -> bool:
    """Whether a record's ``paused_at`` field says the sandbox is paused."""
    if not raw:
        return False
    return json.loads(raw) is not None
