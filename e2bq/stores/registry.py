"""The sandbox registry: which sandboxes each namespace manages, and its default one, in Redis.

Any process pointed at the same Redis and namespace sees the same managed sandboxes.
"""

from __future__ import annotations

import json
import time
from typing import cast

import redis

from ..config import Settings
from ..types import SandboxEntry
from .shaping import live_key
from .store import connect, namespace_key, sandbox_key, text

_GRACE = 60  # seconds a record outlives its sandbox's expiry, so late readers get a clear answer


class Registry:
    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = client or connect(settings)

    def add(self, entry: SandboxEntry) -> None:
        key = sandbox_key(entry["sandbox_id"])
        pipe = self.redis.pipeline()
        pipe.hset(key, mapping={k: json.dumps(v) for k, v in entry.items() if k != "is_default"})
        pipe.expireat(key, int(entry["expires_at"]) + _GRACE)
        pipe.sadd(namespace_key(entry["namespace"], "sandboxes"), entry["sandbox_id"])
        pipe.zadd(live_key(entry["provider"]), {entry["sandbox_id"]: entry["expires_at"]})
        pipe.execute()

    def get(self, sandbox_id: str) -> SandboxEntry | None:
        raw = self.redis.hgetall(sandbox_key(sandbox_id))
        if not raw or "sandbox_id" not in raw:
            return None
        entry = {k: json.loads(v) for k, v in raw.items()}
        if entry["expires_at"] < time.time():
            return None
        entry["is_default"] = self.default(entry["namespace"]) == sandbox_id
        return cast(SandboxEntry, entry)

    def expires_at(self, sandbox_id: str) -> float | None:
        raw = self.redis.hget(sandbox_key(sandbox_id), "expires_at")
        return float(json.loads(raw)) if raw else None

    def list(self, namespace: str) -> list[SandboxEntry]:
        """The namespace's live sandboxes, oldest first; forgets those that expired."""
        entries = []
        for sandbox_id in sorted(map(text, self.redis.smembers(namespace_key(namespace, "sandboxes")))):
            entry = self.get(sandbox_id)
            if entry is None:
                self.redis.srem(namespace_key(namespace, "sandboxes"), sandbox_id)
            else:
                entries.append(entry)
        return sorted(entries, key=lambda e: e["created_at"])

    def remove(self, sandbox_id: str, *, shut_down: bool = False) -> None:
        """Forget a sandbox. When it was shut down on purpose its namespace has no default after;
        when it vanished (expired, its host restarted) the default pointer stays, and the
        toolkit replaces the default sandbox on next use."""
        entry = self.get(sandbox_id)
        pipe = self.redis.pipeline()
        pipe.delete(sandbox_key(sandbox_id))
        if entry is not None:
            # the default pointer stays: a toolkit seeing it dangle replaces the default sandbox
            pipe.srem(namespace_key(entry["namespace"], "sandboxes"), sandbox_id)
            pipe.zrem(live_key(entry["provider"]), sandbox_id)
            if shut_down and entry["is_default"]:
                pipe.delete(namespace_key(entry["namespace"], "default"))
        pipe.execute()

    def extend(self, sandbox_id: str, expires_at: float) -> None:
        entry = self.get(sandbox_id)
        if entry is None:
            return
        key = sandbox_key(sandbox_id)
        pipe = self.redis.pipeline()
        pipe.hset(key, "expires_at", json.dumps(expires_at))
        pipe.expireat(key, int(expires_at) + _GRACE)
        pipe.zadd(live_key(entry["provider"]), {sandbox_id: expires_at})
        pipe.execute()

    def set_default(self, namespace: str, sandbox_id: str) -> None:
        self.redis.set(namespace_key(namespace, "default"), sandbox_id)

    def default(self, namespace: str) -> str | None:
        value = self.redis.get(namespace_key(namespace, "default"))
        return str(value) if value else None
