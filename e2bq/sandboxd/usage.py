"""Each sandbox's resource usage over time: E2B's ``GET /sandboxes/{id}/metrics``.

E2B's envd reports a sandbox's CPU, memory and disk every 5 seconds and its API answers a time
range of those points (5 s apart for any range under an hour). Here sandboxd takes the same points
itself, from each sandbox's cgroup and disk image (``jail.usage``), every ``interval`` seconds,
and keeps the last ``keep`` seconds of them per sandbox (10 minutes by default: 120 points, about
20 KB a sandbox). A sandbox's points go with it when it ends.

CPU percent is the CPU time the sandbox's processes used over the interval against its
``cpu_count`` cores (its CPU share, at least 1): ``cpu_used_pct`` can exceed 100 when a sandbox
uses idle cores beyond its share, which the host allows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypedDict

from .jail import usage

if TYPE_CHECKING:
    from .jail.cgroups import Cgroups
    from .lifecycle.sandboxes import Sandbox, SandboxHost

log = logging.getLogger("e2bq.sandboxd")

INTERVAL = 5.0
KEEP = 600.0


class SandboxMetric(TypedDict):
    """One point, as E2B's API answers it (``SandboxMetric`` of its OpenAPI)."""

    timestamp: str
    timestampUnix: int
    cpuCount: int
    cpuUsedPct: float
    memUsed: int
    memTotal: int
    memCache: int
    diskUsed: int
    diskTotal: int


@dataclass
class _Track:
    """One sandbox's points, and its last CPU reading to measure the next interval from."""

    points: deque[tuple[float, SandboxMetric]]
    cpu_ns: int | None
    at: float


def cpu_count(sandbox: Sandbox) -> int:
    """The cores a sandbox is given, as its listing reports them."""
    return max(1, round(sandbox.jail.limits.cpu))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class UsageSampler:
    """Samples every live sandbox of ``host``; :meth:`series` answers a range of points."""

    def __init__(self, host: SandboxHost, *, interval: float = INTERVAL, keep: float = KEEP) -> None:
        self.host = host
        self.interval = interval
        self._tracks: dict[str, _Track] = {}
        self._max_points = max(1, int(keep / interval))

    async def run(self) -> None:
        """Sample every ``interval`` seconds until cancelled."""
        while True:
            started = time.monotonic()
            try:
                await self.sample()
            except Exception:  # a bug here must not stop the sampling of every other sandbox
                log.exception("sampling sandboxes' usage failed")
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    async def sample(self) -> None:
        """Take one point of every running sandbox; forget the sandboxes that ended. The files are
        read in a worker thread; the points are kept on the event loop, which alone touches them."""
        live = {sid: s for sid, s in self.host.sandboxes.items() if s.state == "running"}
        for gone in self._tracks.keys() - self.host.sandboxes.keys():
            del self._tracks[gone]
        if self.host.launcher is None or not live:
            return
        readings = await asyncio.to_thread(self._read, self.host.launcher.cgroups, live)
        now = time.time()
        for sandbox_id, reading in readings.items():
            if sandbox_id in self.host.sandboxes:  # not killed while it was being read
                self._record(live[sandbox_id], reading, now)

    @staticmethod
    def _read(cgroups: Cgroups, live: dict[str, Sandbox]) -> dict[str, usage.Reading]:
        readings: dict[str, usage.Reading] = {}
        for sandbox_id, sandbox in live.items():
            limits = sandbox.jail.limits
            readings[sandbox_id] = usage.read(
                cgroups,
                sandbox_id,
                data=sandbox.jail.paths.data,
                memory_mb=limits.memory_mb,
                disk_mb=limits.disk_mb,
            )
        return readings

    def _record(self, sandbox: Sandbox, reading: usage.Reading, now: float) -> None:
        track = self._tracks.get(sandbox.sandbox_id)
        if track is None:
            # the first point measures from the sandbox's start (its cgroup counts from then)
            track = _Track(deque(maxlen=self._max_points), 0, sandbox.started_at)
            self._tracks[sandbox.sandbox_id] = track
        cores = cpu_count(sandbox)
        percent = 0.0
        elapsed = now - track.at
        if reading.cpu_ns is not None and track.cpu_ns is not None and elapsed > 0:
            used = max(0, reading.cpu_ns - track.cpu_ns) / 1e9
            percent = round(100.0 * used / (elapsed * cores), 2)
        track.cpu_ns, track.at = reading.cpu_ns, now
        point: SandboxMetric = {
            "timestamp": _iso(now),
            "timestampUnix": int(now),
            "cpuCount": cores,
            "cpuUsedPct": percent,
            "memUsed": reading.mem_used,
            "memTotal": reading.mem_total,
            "memCache": reading.mem_cache,
            "diskUsed": reading.disk_used,
            "diskTotal": reading.disk_total,
        }
        track.points.append((now, point))

    def series(self, sandbox_id: str, start: float | None, end: float | None) -> list[SandboxMetric]:
        """The points of ``sandbox_id`` with ``start <= time <= end`` (whole seconds, as the SDK
        sends them: a point inside the end's second counts), oldest first."""
        track = self._tracks.get(sandbox_id)
        if track is None:
            return []
        low = float("-inf") if start is None else start
        high = float("inf") if end is None else end + 1
        return [point for at, point in track.points if low <= at < high]

    def latest(self, sandbox_id: str) -> SandboxMetric | None:
        track = self._tracks.get(sandbox_id)
        return track.points[-1][1] if track is not None and track.points else None
