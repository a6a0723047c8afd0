"""A burst of creates under a creation rate and a live-sandbox cap (E2B cloud's plan limits): every
create waits for its turn instead of failing, the cap holds at every moment, and creates waiting for
their turn hold up no other work."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from e2bq import E2BToolkit, SandboxManager
from e2bq.protocol import CREATE_SANDBOX
from e2bq.stores.connection import connect
from e2bq.stores.keys import shape_live_key as live_key
from tests.integration.faults.conftest import Stack
from tests.procs import wait_for

RATE, CAP, CREATES = 5, 10, 30


class Sampler:
    """Counts live sandboxes, as sandboxd and as the shaper see them, until stopped."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.host_counts: list[int] = []
        self.shaper_counts: list[int] = []
        self.done = threading.Event()

    def run(self) -> None:
        redis = connect(self.stack.settings())
        with self.stack.host.control() as control:
            while not self.done.is_set():
                listed = control.get("/v2/sandboxes", params={"limit": 100}).json()
                self.host_counts.append(len(listed))
                self.shaper_counts.append(int(redis.zcount(live_key("local"), time.time(), "+inf")))


class Shutter:
    """Shuts down the namespace's oldest sandboxes whenever ``keep`` or more are listed (all of them
    once ``done``), so that creates find the cap reached and wait for slots to free up."""

    def __init__(self, manager: SandboxManager, keep: int) -> None:
        self.manager, self.keep = manager, keep
        self.shut: set[str] = set()
        self.failures: list[dict[str, object]] = []
        self.done = threading.Event()

    def run(self) -> None:
        with ThreadPoolExecutor(4) as pool:
            while True:
                done = self.done.is_set()
                live = [
                    e["sandbox_id"]
                    for e in self.manager.registry.list(self.manager.namespace)
                    if e["sandbox_id"] not in self.shut
                ]
                if done and not live:
                    return
                if done or len(live) >= self.keep:
                    for sandbox_id in live[: None if done else len(live) - self.keep // 2]:
                        self.shut.add(sandbox_id)
                        pool.submit(self._shut_down, sandbox_id)
                time.sleep(0.02)

    def _shut_down(self, sandbox_id: str) -> None:
        answer = self.manager.shutdown(sandbox_id)
        if answer["status"] != "success":
            self.failures.append(answer)


def shaped(stack: Stack, *, rate: int, cap: int, wait: int = 300) -> None:
    stack.env.update(
        {"E2BQ_CREATE_RATE": str(rate), "E2BQ_MAX_LIVE_SANDBOXES": str(cap), "E2BQ_CREATE_WAIT": str(wait)}
    )


@pytest.mark.slow
def test_a_burst_of_creates_is_shaped_not_refused(stack: Stack) -> None:
    shaped(stack, rate=RATE, cap=CAP)
    stack.worker("--concurrency", str(CREATES + 10))
    manager = SandboxManager(settings=stack.settings())
    sampler, shutter = Sampler(stack), Shutter(manager, keep=CAP - 1)
    watchers = [threading.Thread(target=w.run, daemon=True) for w in (sampler, shutter)]
    for thread in watchers:
        thread.start()

    began = time.monotonic()
    with ThreadPoolExecutor(CREATES) as clients:
        created = list(clients.map(lambda _: manager.create(timeout=60), range(CREATES)))
    took = time.monotonic() - began
    shutter.done.set()
    watchers[1].join(timeout=120)
    sampler.done.set()
    watchers[0].join(timeout=30)

    assert len({slot.sandbox_id for slot in created}) == CREATES
    assert shutter.failures == []
    assert shutter.shut == {slot.sandbox_id for slot in created}
    assert sampler.host_counts and max(sampler.host_counts) <= CAP
    assert max(sampler.shaper_counts) <= CAP
    # The rate is the shaper's promise, not the machine's speed: a burst of RATE, then RATE a second.
    assert took >= (CREATES - RATE) / RATE
    assert manager.registry.list(manager.namespace) == []


def creates_running(toolkit: E2BToolkit) -> int:
    active = toolkit.dispatcher.app.control.inspect(timeout=2).active() or {}
    return sum(task["name"] == CREATE_SANDBOX for tasks in active.values() for task in tasks)


@pytest.mark.slow
def test_creates_waiting_for_a_slot_hold_up_no_other_work(stack: Stack, tmp_path: Path) -> None:
    shaped(stack, rate=0, cap=2, wait=120)
    stack.worker()
    toolkit = stack.toolkit(auto_create_default=False)
    full = [toolkit.create_sandbox()["sandbox_id"] for _ in range(2)]
    local = tmp_path / "payload.bin"
    local.write_bytes(bytes(range(256)) * 4096)
    shutter = Shutter(toolkit.manager, keep=1)
    with ThreadPoolExecutor(8) as clients:
        # More creates than the worker has threads for blocking calls, all waiting for a slot.
        waiting = [clients.submit(toolkit.create_sandbox) for _ in range(8)]
        wait_for(lambda: creates_running(toolkit) == 8, 60, "8 creates to wait in the worker")

        # Meanwhile the same worker carries on with other work, files included.
        sent = toolkit.upload_file(str(local), sandbox_id=full[0], sandbox_path="/home/user/payload.bin")
        assert sent["status"] == "success", sent
        back = toolkit.download_file_from_sandbox(
            "/home/user/payload.bin", sandbox_id=full[0], local_path=str(tmp_path / "back.bin")
        )
        assert back["status"] == "success", back
        assert (tmp_path / "back.bin").read_bytes() == local.read_bytes()
        assert toolkit.run_command("echo ok", sandbox_id=full[1])["stdout"] == "ok\n"
        assert not any(create.done() for create in waiting)

        # Slots free up: every waiting create goes through.
        freeing = threading.Thread(target=shutter.run, daemon=True)
        freeing.start()
        results = [create.result(timeout=180) for create in waiting]
    shutter.done.set()
    freeing.join(timeout=120)
    assert [r["status"] for r in results] == ["success"] * 8, results
    assert shutter.failures == []
