"""The node a worker serves: its heartbeat with the sandbox host's capacity, published in Redis.

Every worker of a local sandbox host beats for its node (``E2BQ_NODE``) every ``_BEAT_EVERY``
seconds, with the numbers the host reports at ``GET /health``. When the host stops answering the
worker stops beating, so a node whose host died is lost even while its workers live. Workers of
E2B's cloud have no node and do not beat.
"""

from __future__ import annotations

import logging
import threading
import time

import httpx

from e2bq.config import Settings
from e2bq.stores.nodes import NodeStore
from e2bq.types import NodeRecord

log = logging.getLogger("e2bq.worker")
_BEAT_EVERY = 2.0


class NodeBeat:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = NodeStore(settings)
        self.host = settings.e2b_api_url or settings.e2b_sandbox_url
        self.http = httpx.Client(timeout=min(5.0, settings.node_timeout / 3))

    def once(self) -> None:
        """Ask the sandbox host for its numbers and publish them (raises when either fails)."""
        sampled_at = time.time()
        answer = self.http.get(f"{self.host}/health")
        answer.raise_for_status()
        numbers = answer.json()
        capacity = int(numbers.get("max_sandboxes", 0))
        live = int(numbers.get("sandboxes", 0))
        record: NodeRecord = {
            "node": self.settings.node,
            "url": self.settings.node_address or "",
            "capacity": capacity,
            "live": live,
            "free": int(numbers.get("free", max(0, capacity - live))),
            "seen_at": time.time(),
            "started_at": float(numbers.get("started_at", 0.0)),
        }
        self.store.beat(record, sampled_at)

    def forever(self) -> None:
        failing = False
        while True:
            try:
                self.once()
                if failing:
                    log.warning("node %s: its sandbox host answers again", self.settings.node)
                failing = False
            except Exception as exc:  # this thread must outlive any outage; the silence is the signal
                if not failing:
                    log.warning("node %s: cannot publish its heartbeat: %s", self.settings.node, exc)
                failing = True
            time.sleep(_BEAT_EVERY)


def start_node_beat(settings: Settings) -> threading.Thread | None:
    """Beat for this worker's node (first beat before returning); None for E2B's cloud."""
    if settings.provider != "local":
        return None
    beat = NodeBeat(settings)
    try:
        beat.once()
    except Exception as exc:
        log.warning("node %s: cannot publish its heartbeat yet: %s", settings.node, exc)
    thread = threading.Thread(target=beat.forever, name="e2bq-node-beat", daemon=True)
    thread.start()
    return thread
