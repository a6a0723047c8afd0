"""``get_metrics``: a sandbox's CPU, memory and disk from its cgroup and disk image, sampled by
sandboxd every 5 seconds as E2B samples them, through the sync and async SDK and the class method."""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Callable

import pytest
from e2b import NotFoundException, SandboxException, SandboxMetrics
from e2b_code_interpreter import AsyncSandbox, Sandbox

from tests.procs import SandboxHostProcess

MIB = 1024 * 1024


def wait_for_points(fetch: Callable[[], list[SandboxMetrics]], count: int) -> list[SandboxMetrics]:
    """The sandbox's points once it has ``count`` (sandboxd samples every 5 s)."""
    deadline = time.monotonic() + 5 * count + 15
    while True:
        points = fetch()
        if len(points) >= count:
            return points
        assert time.monotonic() < deadline, f"only {len(points)} points after {5 * count + 15} s"
        time.sleep(0.5)


def test_a_series_of_points_from_the_sandboxs_cgroup_and_disk(sandbox: Sandbox) -> None:
    sandbox.commands.run("head -c 30000000 /dev/urandom > /home/user/blob")
    points = wait_for_points(sandbox.get_metrics, 2)
    first, last = points[0], points[-1]
    assert [p.timestamp for p in points] == sorted(p.timestamp for p in points)
    assert (last.timestamp - first.timestamp).total_seconds() >= 4  # one every 5 s, as E2B's
    assert last.cpu_count == 1  # the host's default share, as the listing says
    assert last.mem_total == 1024 * MIB  # the sandbox's memory limit
    assert 0 < last.mem_used < last.mem_total
    assert 1900 * MIB < last.disk_total <= 2048 * MIB  # its 2 GiB disk image, less ext4's own
    assert last.disk_used >= 30_000_000
    assert all(p.cpu_used_pct >= 0 for p in points)


def test_busy_cpu_shows_in_the_points(sandbox: Sandbox) -> None:
    sandbox.commands.run("timeout 6 sh -c 'while :; do :; done' || true", timeout=30)
    points = wait_for_points(sandbox.get_metrics, 2)
    assert max(p.cpu_used_pct for p in points) > 0


def test_a_range_and_the_class_method(sandbox: Sandbox) -> None:
    points = wait_for_points(lambda: Sandbox.get_metrics(sandbox.sandbox_id), 2)
    start = points[-1].timestamp
    ranged = Sandbox.get_metrics(sandbox.sandbox_id, start=start, end=start + datetime.timedelta(seconds=1))
    assert [p.timestamp for p in ranged] == [start]
    assert sandbox.get_metrics(end=points[0].timestamp - datetime.timedelta(seconds=1)) == []


def test_bad_ranges_and_unknown_sandboxes_are_refused(sandbox: Sandbox) -> None:
    now = datetime.datetime.now(datetime.UTC)
    with pytest.raises(SandboxException, match="Invalid time range"):
        sandbox.get_metrics(start=now, end=now - datetime.timedelta(minutes=1))
    with pytest.raises(NotFoundException):
        Sandbox.get_metrics("inosuchsandbox0000000")


def test_a_killed_sandbox_has_no_metrics(sdk_env: SandboxHostProcess) -> None:
    sandbox = Sandbox.create(timeout=60)
    sandbox_id = sandbox.sandbox_id
    sandbox.kill()
    with pytest.raises(NotFoundException):
        Sandbox.get_metrics(sandbox_id)


def test_async_sdk_gets_metrics(sdk_env: SandboxHostProcess) -> None:
    async def scenario() -> tuple[list[SandboxMetrics], list[SandboxMetrics]]:
        sandbox = await AsyncSandbox.create(timeout=120)
        try:
            deadline = time.monotonic() + 20
            while not (points := await sandbox.get_metrics()):
                assert time.monotonic() < deadline, "no point after 20 s"
                await asyncio.sleep(0.5)
            return points, await AsyncSandbox.get_metrics(sandbox.sandbox_id)
        finally:
            await sandbox.kill()

    own, by_id = asyncio.run(scenario())
    assert own[0].mem_total == 1024 * MIB
    assert by_id[: len(own)] == own


def test_the_latest_point_of_several_sandboxes(sandbox: Sandbox, sdk_env: SandboxHostProcess) -> None:
    points = wait_for_points(sandbox.get_metrics, 1)
    with sdk_env.control() as control:
        answer = control.get("/sandboxes/metrics", params={"sandbox_ids": f"{sandbox.sandbox_id},inosuch"})
        assert answer.status_code == 200
        latest = answer.json()["sandboxes"]
        assert list(latest) == [sandbox.sandbox_id]  # an unknown id is left out
        assert latest[sandbox.sandbox_id]["timestampUnix"] >= int(points[-1].timestamp.timestamp())
        assert control.get("/sandboxes/metrics").status_code == 400
