"""map_python_code: many code items through a pool of sandboxes made for the job, results in input
order, progress counts, retries on a fresh sandbox, kill_job, and lanes spread over nodes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.result import AsyncResult
from e2b import SandboxQuery
from e2b_code_interpreter import Sandbox

from e2bq import E2BToolkit, SandboxManager, Settings
from e2bq.embedded import Stack, embedded
from tests.procs import WorkerProcess, wait_for

BLOCK = "import time\nwhile True:\n    time.sleep(0.05)"
# Kills the sandbox it runs in (its agent, whose end is the jail's) if an earlier item of the same
# sandbox set `first`; on a fresh sandbox it returns.
# The sandbox dies under the item when its kernel has run an earlier item: code that kills the
# sandbox's agent (the jail ends with it).
# The agent's supervisor first (it would start the agent again), then the agent: the sandbox ends.
KILL_IF_NOT_FRESH = """
import os
if globals().get('first'):
    for mark in (b'e2bq-supervisor', b'agent.server'):
        for pid in filter(str.isdigit, os.listdir('/proc')):
            try:
                if mark in open(f'/proc/{pid}/cmdline', 'rb').read():
                    os.kill(int(pid), 9)
            except OSError:
                pass
6 * 7
"""


def finished(kit: E2BToolkit, job_id: str, timeout: float = 120) -> Any:
    """The job's record once it is no longer running."""
    wait_for(lambda: kit.get_job_status(job_id)["status"] != "running", timeout, f"map {job_id} to end")
    return kit.get_job_status(job_id)


def results(kit: E2BToolkit, job_id: str, offset: int = 0, limit: int = 100) -> list[Any]:
    answer = kit.get_job_results(job_id, offset=offset, limit=limit)
    assert answer["status"] == "success", answer
    json.dumps(answer)
    return list(answer["results"])


def texts(items: list[Any]) -> list[str]:
    return [item["results"][0]["text"] if item["status"] == "success" else item["status"] for item in items]


def sandboxes_of(job_id: str, settings: Settings) -> list[str]:
    """The job's sandboxes alive on the sandbox host ``settings`` points at, by the SDK's list."""
    paginator = Sandbox.list(query=SandboxQuery(metadata={"e2bq_map_job": job_id}), **settings.sdk_options())
    ids: list[str] = []
    while paginator.has_next:
        ids += [info.sandbox_id for info in paginator.next_items()]
    return ids


def test_results_come_back_in_input_order(bare_toolkit: E2BToolkit) -> None:
    codes = [f"{i} * {i}" for i in range(30)]

    accepted = bare_toolkit.map_python_code(codes, pool_size=4)

    assert accepted["status"] == "accepted", accepted
    assert accepted["total"] == 30
    job_id = accepted["job_id"]
    record = finished(bare_toolkit, job_id)
    assert (record["status"], record["kind"]) == ("done", "map")
    assert (record["total"], record["done"], record["failed"]) == (30, 30, 0)
    assert record["message"] == "30 items: 30 succeeded, 0 failed"
    items = results(bare_toolkit, job_id)
    assert texts(items) == [str(i * i) for i in range(30)]
    for item in items:  # the shape run_python_code returns
        assert set(item) >= {"status", "sandbox_id", "results", "logs", "error", "execution_count"}
    assert texts(results(bare_toolkit, job_id, offset=10, limit=5)) == [str(i * i) for i in range(10, 15)]
    assert results(bare_toolkit, job_id, offset=30) == []


def test_pool_size_bounds_the_sandboxes_and_they_are_shut_down_at_the_end(bare_toolkit: E2BToolkit) -> None:
    settings = bare_toolkit.settings
    job_id = bare_toolkit.map_python_code(["import time; time.sleep(0.01)"] * 60, pool_size=3)["job_id"]
    at_once: list[int] = []

    def ended() -> bool:
        at_once.append(len(sandboxes_of(job_id, settings)))
        return bool(bare_toolkit.get_job_status(job_id)["status"] != "running")

    wait_for(ended, 120, "the map to end")
    assert max(at_once) <= 3  # never more than pool_size alive at once
    used = {item["sandbox_id"] for item in results(bare_toolkit, job_id)}
    assert 1 <= len(used) <= 3

    def managed() -> list[str]:
        listed = bare_toolkit.list_managed_sandboxes()["sandboxes"]
        return [entry["sandbox_id"] for entry in listed if entry["metadata"].get("e2bq_map_job") == job_id]

    wait_for(lambda: not sandboxes_of(job_id, settings), 30, "the map's sandboxes to be shut down")
    wait_for(lambda: not managed(), 30, "the registry to forget them")


def test_state_carries_from_item_to_item_in_one_sandbox(bare_toolkit: E2BToolkit) -> None:
    job_id = bare_toolkit.map_python_code(["x = 41", "x + 1"], pool_size=1)["job_id"]

    assert finished(bare_toolkit, job_id)["status"] == "done"
    assigned, read = results(bare_toolkit, job_id)
    assert (assigned["status"], assigned["results"]) == ("success", [])
    assert texts([read]) == ["42"]
    assert read["sandbox_id"] == assigned["sandbox_id"]


def test_an_item_that_raises_is_counted_failed_with_e2bs_error(bare_toolkit: E2BToolkit) -> None:
    job_id = bare_toolkit.map_python_code(["1", "raise ValueError('bad item')", "3"], pool_size=2)["job_id"]

    record = finished(bare_toolkit, job_id)

    assert record["status"] == "done"
    assert (record["total"], record["done"], record["failed"]) == (3, 2, 1)
    assert record["message"] == "3 items: 2 succeeded, 1 failed"
    first, failed, third = results(bare_toolkit, job_id)
    assert (first["status"], third["status"]) == ("success", "success")
    assert failed["status"] == "error"
    assert failed["error"]["name"] == "ValueError"
    assert failed["error"]["value"] == "bad item"
    assert "ValueError" in failed["error"]["traceback"]


def test_an_item_past_timeout_each_fails_and_the_next_runs(bare_toolkit: E2BToolkit) -> None:
    codes = ["import time; time.sleep(60)", "1 + 1"]
    job_id = bare_toolkit.map_python_code(codes, pool_size=1, timeout_each=1)["job_id"]

    record = finished(bare_toolkit, job_id)

    assert (record["status"], record["done"], record["failed"]) == ("done", 1, 1)
    late, then = results(bare_toolkit, job_id)
    assert late["status"] == "error"
    assert then["results"][0]["text"] == "2"


def test_an_item_whose_sandbox_died_runs_again_on_a_fresh_one(bare_toolkit: E2BToolkit) -> None:
    codes = ["first = True", KILL_IF_NOT_FRESH, "'first' in globals()"]

    job_id = bare_toolkit.map_python_code(codes, pool_size=1, retries=1)["job_id"]

    record = finished(bare_toolkit, job_id)
    assert (record["status"], record["done"], record["failed"]) == ("done", 3, 0)
    first, retried, after = results(bare_toolkit, job_id)
    assert texts([retried, after]) == ["42", "False"]
    assert retried["sandbox_id"] != first["sandbox_id"]
    assert after["sandbox_id"] == retried["sandbox_id"]


def test_with_no_retries_an_item_whose_sandbox_died_fails(bare_toolkit: E2BToolkit) -> None:
    codes = ["first = True", KILL_IF_NOT_FRESH, "'first' in globals()"]

    job_id = bare_toolkit.map_python_code(codes, pool_size=1, retries=0)["job_id"]

    record = finished(bare_toolkit, job_id)
    assert (record["status"], record["done"], record["failed"]) == ("done", 2, 1)
    _, died, after = results(bare_toolkit, job_id)
    assert died["status"] == "error"
    assert died["error_type"] == "SandboxNotFoundError"
    assert texts([after]) == ["False"]  # the lane carried on with a new sandbox


def test_progress_shows_while_it_runs_and_kill_job_stops_every_item(bare_toolkit: E2BToolkit) -> None:
    settings = bare_toolkit.settings
    job_id = bare_toolkit.map_python_code(["1", "2", *[BLOCK] * 10], pool_size=2)["job_id"]
    wait_for(
        lambda: bare_toolkit.get_job_status(job_id)["done"] == 2 and len(sandboxes_of(job_id, settings)) == 2,
        120,
        "both lanes to be running a blocking item",
    )
    running = bare_toolkit.get_job_status(job_id)
    progress = (running["status"], running["state"], running["total"], running["failed"])
    assert progress == ("running", "started", 12, 0)
    assert results(bare_toolkit, job_id)[2:] == [{"status": "running", "index": i} for i in range(2, 12)]

    killed = bare_toolkit.kill_job(job_id)

    assert killed == {"status": "cancelled", "job_id": job_id, "killed_proc": True, "result": "cancelled"}
    wait_for(lambda: not sandboxes_of(job_id, settings), 15, "the lanes to kill their sandboxes")
    lanes = AsyncResult(f"{job_id}-lanes-0", app=bare_toolkit.dispatcher.app)
    wait_for(lanes.ready, 15, "the lane task to end")
    record = bare_toolkit.get_job_status(job_id)
    assert (record["status"], record["done"], record["failed"]) == ("cancelled", 2, 0)
    items = results(bare_toolkit, job_id)
    assert texts(items[:2]) == ["1", "2"]
    for item in items[2:]:
        assert item["status"] == "error" and "not run" in item["message"], item
    assert bare_toolkit.kill_job(job_id)["status"] == "not_cancelled"  # it already ended


def test_an_empty_map_is_done_at_once(bare_toolkit: E2BToolkit) -> None:
    accepted = bare_toolkit.map_python_code([])

    assert accepted["status"] == "accepted" and accepted["total"] == 0
    record = bare_toolkit.get_job_status(accepted["job_id"])
    assert (record["status"], record["total"], record["done"], record["failed"]) == ("done", 0, 0, 0)
    assert results(bare_toolkit, accepted["job_id"]) == []


def test_a_map_no_sandbox_can_be_made_for_ends_error(
    client_env: dict[str, str], queue_worker: WorkerProcess
) -> None:
    manager = SandboxManager(default_options={"template": "no-such-template"})
    kit = E2BToolkit(manager, auto_create_default=False)
    job_id = kit.map_python_code(["1", "2", "3"], pool_size=2)["job_id"]

    record = finished(kit, job_id)

    assert (record["status"], record["done"], record["failed"]) == ("error", 0, 0), record
    assert "3 of 3 items were not run: every lane stopped (no sandbox could be made" in record["message"]
    for item in results(kit, job_id):
        assert item["status"] == "error" and "not run" in item["message"], item


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"codes": "print(1)"}, "codes"),
        ({"codes": ["1", 2]}, "codes"),
        ({"codes": None}, "codes"),
        ({"codes": ["1"], "pool_size": 0}, "pool_size"),
        ({"codes": ["1"], "pool_size": "3"}, "pool_size"),
        ({"codes": ["1"], "pool_size": True}, "pool_size"),
        ({"codes": ["1"], "pool_size": 10_000}, "pool_size"),
        ({"codes": ["1"], "timeout_each": 0}, "timeout_each"),
        ({"codes": ["1"], "timeout_each": "5"}, "timeout_each"),
        ({"codes": ["1"], "retries": -1}, "retries"),
        ({"codes": ["1"], "retries": 1.5}, "retries"),
        ({"codes": ["1"], "job_id": ""}, "job_id"),
    ],
)
def test_bad_input_is_an_error_naming_the_parameter(
    bare_toolkit: E2BToolkit, arguments: dict[str, Any], named: str
) -> None:
    outcome = bare_toolkit.map_python_code(**arguments)

    assert outcome["status"] == "error", outcome
    assert named in outcome["message"]


def test_results_of_a_job_that_is_not_a_map_or_not_there(bare_toolkit: E2BToolkit) -> None:
    job_id = bare_toolkit.map_python_code(["1"])["job_id"]
    finished(bare_toolkit, job_id)

    bad = [(-1, 10, "offset"), (0, 0, "limit"), ("0", 10, "offset"), (0, 10**6, "limit")]
    for offset, limit, named in bad:
        outcome = bare_toolkit.get_job_results(job_id, offset=offset, limit=limit)
        assert outcome["status"] == "error" and named in outcome["message"], outcome
    assert bare_toolkit.get_job_results("no-such-job")["status"] == "error"
    assert bare_toolkit.map_python_code(["1"], job_id=job_id)["message"].startswith(f"job id {job_id!r}")


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, E2BToolkit, list[Settings]]]:
    """A stack of its own with two nodes (a sandboxd and a worker each), a toolkit of it, and
    settings pointing the SDK at each node's sandbox host."""
    with embedded(nodes=2, warm_pool=0, workdir=Path(tmp_path_factory.mktemp("nodes"))) as stack:
        kit = E2BToolkit(SandboxManager(settings=Settings.from_env(stack.env)), auto_create_default=False)
        yield stack, kit, [Settings.from_env(host.env) for host in stack.hosts]


@pytest.mark.slow
def test_lanes_spread_over_two_nodes(two_nodes: tuple[Stack, E2BToolkit, list[Settings]]) -> None:
    _, kit, hosts = two_nodes
    job_id = kit.map_python_code([BLOCK] * 6, pool_size=6)["job_id"]

    wait_for(
        lambda: all(sandboxes_of(job_id, host) for host in hosts)
        and sum(len(sandboxes_of(job_id, host)) for host in hosts) == 6,
        120,
        "six lanes running, on both nodes",
    )

    assert kit.kill_job(job_id)["status"] == "cancelled"
    wait_for(lambda: not any(sandboxes_of(job_id, host) for host in hosts), 15, "every lane to stop")


@pytest.mark.slow
def test_the_items_of_lanes_whose_worker_died_are_taken_over(
    two_nodes: tuple[Stack, E2BToolkit, list[Settings]],
) -> None:
    """Last in the module: it kills the second node's only worker."""
    stack, kit, hosts = two_nodes
    job_id = kit.map_python_code(["import time; time.sleep(0.1)"] * 200, pool_size=6)["job_id"]
    wait_for(lambda: all(sandboxes_of(job_id, host) for host in hosts), 120, "lanes on both nodes")

    doomed = stack.workers[1]  # the second node's: its lanes die holding items
    doomed.proc.kill()
    doomed.proc.wait()

    # The survivors take the dead lanes' items once their heartbeat lapses (15 s).
    record = finished(kit, job_id, timeout=120)
    assert (record["status"], record["done"], record["failed"]) == ("done", 200, 0), record
    assert all(item["status"] == "success" for item in results(kit, job_id, limit=200))
