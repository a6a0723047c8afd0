"""What every benchmark shares: percentiles, a private sandboxd, printing a table."""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's e2bq

from e2bq.launch import SandboxHostProcess, start_sandboxd

if TYPE_CHECKING:
    from e2bq import E2BToolkit
    from e2bq.embedded import Stack


def pct(samples: list[float], q: float) -> float:
    """The q-th percentile (0-100) of samples, nearest-rank."""
    ordered = sorted(samples)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def summary(samples: list[float]) -> str:
    return (
        f"p50 {ms(pct(samples, 50))}  p95 {ms(pct(samples, 95))}  p99 {ms(pct(samples, 99))}  "
        f"mean {ms(statistics.fmean(samples))}  n={len(samples)}"
    )


@contextlib.contextmanager
def host(*extra: str) -> Iterator[SandboxHostProcess]:
    """A private sandboxd, with the SDK's environment pointed at it."""
    with tempfile.TemporaryDirectory() as tmp, start_sandboxd(Path(tmp), *extra) as running:
        os.environ.update(running.env)
        yield running


def row(name: str, value: str, baseline: str = "") -> None:
    print(f"| {name} | {value} | {baseline} |", flush=True)


def header(title: str) -> None:
    print(f"\n### {title}\n\n| measure | e2bq | baseline (same run) |\n|---|---|---|", flush=True)


class RedisCounter:
    """Redis commands executed between two points, less what the idle cluster issues meanwhile."""

    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(url)
        start, began = self._calls(), time.monotonic()
        time.sleep(3)
        self.idle_rate = (self._calls() - start) / (time.monotonic() - began)

    def _calls(self) -> int:
        stats = self.redis.info("commandstats")
        return sum(int(v["calls"]) for k, v in stats.items() if k not in ("cmdstat_info",))

    def per_call(self, fn: Callable[[], object], n: int) -> float:
        start, began = self._calls(), time.monotonic()
        for _ in range(n):
            fn()
        spent = self._calls() - start - self.idle_rate * (time.monotonic() - began)
        return spent / n


@contextlib.contextmanager
def toolkit_stack() -> Iterator[tuple[Stack, E2BToolkit, str]]:
    """The embedded default (one threads-pool worker of 32 threads) with the environment pointed at
    it, a toolkit, and the id of its default sandbox (made now)."""
    from e2bq.embedded import embedded

    with embedded(worker_args=("--pool", "threads", "--concurrency", "32")) as stack:
        os.environ.update(stack.env)
        from e2bq import E2BToolkit, SandboxManager

        toolkit = E2BToolkit(SandboxManager(default_timeout=900), auto_create_default=True)
        yield stack, toolkit, toolkit.list_managed_sandboxes()["default_sandbox_id"]
