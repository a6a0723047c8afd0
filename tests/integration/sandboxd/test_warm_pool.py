"""The warm pool: sandboxes launched ahead of creates, each handed out once, gone with the host."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2b.exceptions import RateLimitException
from e2b_code_interpreter import Sandbox

from tests.procs import SandboxHostProcess, sandbox_host, stop, wait_for

from .test_isolation import host_pids_running

POOL = 2


def metric(host: SandboxHostProcess, name: str, labels: str = "") -> float:
    """One sample of sandboxd's Prometheus metrics (0 when it has none yet)."""
    wanted = f"{name}{{{labels}}}" if labels else name
    for line in httpx.get(host.url + "/metrics").text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0


def wait_until_filled(host: SandboxHostProcess, ready: int = POOL) -> None:
    wait_for(lambda: metric(host, "e2bq_sandboxd_pool_ready") == ready, 60, f"{ready} pooled sandboxes")


def pooled_ids(host: SandboxHostProcess, live: set[str]) -> set[str]:
    """Ids of the jails waiting in the pool: every jail folder that is no live sandbox's."""
    return {path.name for path in host.state_dir.glob("i*")} - live


@pytest.fixture
def pool_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxHostProcess]:
    with sandbox_host(tmp_path, "--warm-pool", str(POOL)) as host:
        for name, value in host.env.items():
            monkeypatch.setenv(name, value)
        wait_until_filled(host)
        yield host


def test_a_create_takes_a_ready_sandbox_and_the_pool_refills(pool_host: SandboxHostProcess) -> None:
    waiting = pooled_ids(pool_host, set())
    assert len(waiting) == POOL

    sandbox = Sandbox.create(timeout=120, metadata={"test": "pool"})
    try:
        assert sandbox.sandbox_id in waiting
        assert metric(pool_host, "e2bq_sandboxd_pool_takes_total", 'outcome="ready"') == 1
        assert sandbox.run_code("1 + 1").text == "2"
        assert sandbox.commands.run("whoami").stdout == "user\n"
        info = sandbox.get_info()
        assert info.metadata == {"test": "pool"}
        assert (info.end_at - info.started_at).total_seconds() == pytest.approx(120, abs=2)
        wait_until_filled(pool_host)
        assert len(pooled_ids(pool_host, {sandbox.sandbox_id})) == POOL
    finally:
        sandbox.kill()


def test_a_pooled_sandbox_is_handed_out_once_and_destroyed_with_its_sandbox(
    pool_host: SandboxHostProcess,
) -> None:
    first = Sandbox.create(timeout=120)
    first.files.write("/home/user/secret.txt", "first's")
    first.kill()
    assert not (pool_host.state_dir / first.sandbox_id).exists()

    second = Sandbox.create(timeout=120)
    try:
        assert second.sandbox_id != first.sandbox_id
        assert not second.files.exists("/home/user/secret.txt")
        assert metric(pool_host, "e2bq_sandboxd_pool_takes_total", 'outcome="ready"') == 2
    finally:
        second.kill()


@pytest.mark.parametrize(
    "options",
    [
        {"envs": {"GREETING": "hello"}},
        {"metadata": {"e2bq.memory_mb": "256"}},
        {"allow_internet_access": False},
    ],
    ids=["envs", "lower-limits", "no-internet"],
)
def test_a_create_asking_for_something_else_launches_its_own(
    pool_host: SandboxHostProcess, options: dict[str, object]
) -> None:
    waiting = pooled_ids(pool_host, set())

    sandbox = Sandbox.create(timeout=120, **options)  # type: ignore[arg-type]
    try:
        assert sandbox.sandbox_id not in waiting
        assert pooled_ids(pool_host, {sandbox.sandbox_id}) == waiting
        assert metric(pool_host, "e2bq_sandboxd_pool_takes_total", 'outcome="ready"') == 0
        if "envs" in options:
            assert sandbox.commands.run("echo $GREETING").stdout == "hello\n"
    finally:
        sandbox.kill()


def test_pooled_sandboxes_do_not_count_against_the_maximum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with sandbox_host(tmp_path, "--warm-pool", "1", "--max-sandboxes", "1") as host:
        for name, value in host.env.items():
            monkeypatch.setenv(name, value)
        wait_until_filled(host, 1)
        first = Sandbox.create(timeout=60, retries=0)
        try:
            with pytest.raises(RateLimitException):
                Sandbox.create(timeout=60, retries=0)
        finally:
            first.kill()


def test_sigterm_ends_the_pooled_sandboxes_and_clears_their_folders(
    pool_host: SandboxHostProcess,
) -> None:
    assert len(pooled_ids(pool_host, set())) == POOL
    assert host_pids_running(str(pool_host.state_dir))

    stop(pool_host.proc)

    assert pool_host.proc.returncode in (0, -signal.SIGTERM), pool_host.log.read_text()
    assert host_pids_running(str(pool_host.state_dir)) == []
    assert list(pool_host.state_dir.glob("i*")) == []


def test_a_pool_with_a_maximum_grows_to_the_creates_it_sees(tmp_path: Path) -> None:
    """``--warm-pool 1 --warm-pool-max 4``: one jail ready at first; three creates in a row make
    it hold three, never more than the maximum."""
    with sandbox_host(tmp_path, "--warm-pool", "1", "--warm-pool-max", "4") as host:
        wait_until_filled(host, 1)
        assert metric(host, "e2bq_sandboxd_pool_target") == 1
        for _ in range(3):
            Sandbox.create(timeout=60, **sdk_options(host)).kill()
        wait_for(lambda: metric(host, "e2bq_sandboxd_pool_target") == 3, 10, "the pool to aim at 3")
        wait_until_filled(host, 3)
        assert len(pooled_ids(host, set())) == 3


def sdk_options(host: SandboxHostProcess) -> dict[str, str]:
    return {"api_key": host.api_key, "api_url": host.url, "sandbox_url": host.url}
