"""What every benchmark shares: percentiles, a private sandboxd, printing a table."""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's e2bq

from e2bq.launch import SandboxHostProcess, start_sandboxd


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
