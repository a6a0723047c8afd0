"""Worker shutdowns in Redis: when a stopping worker ends the work it still runs.

On SIGTERM a worker's main process marks itself stopping; its task threads and prefork children
read the mark while they run work, let it finish within the grace period, then stop it.
"""

from __future__ import annotations

import time

import redis

from ..config import Settings
from .connection import connect, translates_errors
from .keys import worker_stopping_key


class Shutdowns:
    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = client or connect(settings)

    @translates_errors
    def announce(self, worker: str, grace: float) -> None:
        """``worker`` is shutting down: its running work has ``grace`` more seconds."""
        self.redis.set(worker_stopping_key(worker), str(time.time() + grace), ex=int(grace) + 3600)

    @translates_errors
    def clear(self, worker: str) -> None:
        """``worker`` (re)started under this name: a mark left by an earlier run no longer holds."""
        self.redis.delete(worker_stopping_key(worker))

    @translates_errors
    def stop_at(self, worker: str) -> float | None:
        """When ``worker`` stops its running work (a time.time() value), or None if it is not stopping."""
        value = self.redis.get(worker_stopping_key(worker))
        return float(value) if value else None
