"""sandboxd's Prometheus metrics (``GET /metrics``): sandboxes, creates, executions, limits hit.

One registry per host app, so several hosts in a process (tests) never share counters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_CREATE_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_EXECUTE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0)


class HostMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.live = Gauge("e2bq_sandboxd_sandboxes", "Sandboxes alive now", registry=r)
        self.created = Counter("e2bq_sandboxd_sandboxes_created", "Sandboxes created", registry=r)
        self.create_failures = Counter(
            "e2bq_sandboxd_create_failures", "Creates refused or failed", ["reason"], registry=r
        )
        self.ended = Counter("e2bq_sandboxd_sandboxes_ended", "Sandboxes ended", ["reason"], registry=r)
        self.create_seconds = Histogram(
            "e2bq_sandboxd_create_seconds", "Time to create a sandbox", buckets=_CREATE_BUCKETS, registry=r
        )
        self.requests = Counter(
            "e2bq_sandboxd_requests", "Data-plane requests", ["service", "status"], registry=r
        )
        self.executions = Counter("e2bq_sandboxd_executions", "Code executions (/execute)", registry=r)
        self.execute_seconds = Histogram(
            "e2bq_sandboxd_execute_seconds", "Duration of /execute requests",
            buckets=_EXECUTE_BUCKETS, registry=r,
        )
        self.pool_ready = Gauge("e2bq_sandboxd_pool_ready", "Sandboxes ready in the warm pool", registry=r)
        self.pool_target = Gauge(
            "e2bq_sandboxd_pool_target", "Sandboxes the warm pool aims to hold now", registry=r
        )
        self.pool_takes = Counter(
            "e2bq_sandboxd_pool_takes", "Creates the warm pool could serve, by outcome (ready, empty)",
            ["outcome"], registry=r,
        )
        self.limits_hit = Counter(
            "e2bq_sandboxd_limits_hit", "Limits reached (sandboxes, memory, disk)", ["limit"], registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
