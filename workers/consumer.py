"""The worker's consumer: Celery's, reconnecting to the broker in a quarter of a second.

When a worker loses the broker (a Redis restart, a Sentinel failover), kombu tries to reconnect in
rounds 2, 4, 6 ... seconds apart (its defaults; Celery has no setting for them). A failover is over
in about 2 s, so the worker came back ~6 s after its master's death, while clients, whose publish
and result retries are finer, were ready after ~2.5. This consumer first tries every 0.25 s for up
to ``QUICK_RECONNECT`` seconds, then falls back to Celery's own retries (and their logging).
"""

from __future__ import annotations

import contextlib
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer

QUICK_RECONNECT = 30.0  # seconds of quick attempts before Celery's slower rounds take over
_INTERVAL = 0.25


class Consumer(CeleryConsumer):
    def ensure_connected(self, conn: Any) -> Any:
        if not self.first_connection_attempt:  # a start without a broker keeps Celery's behaviour
            with contextlib.suppress(*conn.recoverable_connection_errors):
                conn.ensure_connection(
                    max_retries=int(QUICK_RECONNECT / _INTERVAL),
                    interval_start=_INTERVAL,
                    interval_step=0,
                    interval_max=_INTERVAL,
                    reraise_as_library_errors=False,  # so that the errors suppressed are these
                )
        return super().ensure_connected(conn)
