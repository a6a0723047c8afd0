"""run_in_all_sandboxes: the same code in every managed sandbox; one failure spoils no other result."""

from __future__ import annotations

import concurrent.futures
import json
import uuid
from collections.abc import Iterator

import pytest
from e2b_code_interpreter import Sandbox

from e2bq import E2BToolkit, SandboxManager, Settings
from tests.procs import WorkerProcess

FLEET = 9  # sandboxes shared by this module's tests; each test adds a tenth with a twist
CODE = (
    "import os, time\n"
    "if os.path.exists('/home/user/slow'):\n"
    "    time.sleep(60)\n"
    "os.environ.get('HOSTNAME', 'e2b') + ' says hi'\n"
)


@pytest.fixture(scope="module")
def fleet(stack_env: dict[str, str], queue_worker: WorkerProcess) -> Iterator[E2BToolkit]:
    """A toolkit managing FLEET healthy sandboxes (this module's namespace has no others)."""
    settings = Settings.from_env(stack_env)
    toolkit = E2BToolkit(SandboxManager(settings=settings), auto_create_default=False)

    def create(n: int) -> str:
        # A manager per thread, as concurrent clients would have: sandboxes are made in parallel.
        return SandboxManager(settings=settings).create(metadata={"n": str(n)}).sandbox_id

    try:
        with concurrent.futures.ThreadPoolExecutor(FLEET) as pool:
            assert len(set(pool.map(create, range(FLEET)))) == FLEET
        yield toolkit
    finally:
        toolkit.shutdown_all_sandboxes()


@pytest.fixture
def tenth(fleet: E2BToolkit) -> Iterator[str]:
    """One more managed sandbox, removed after the test."""
    created = fleet.create_sandbox(metadata={"n": "tenth"})
    assert created["status"] == "success", created
    try:
        yield created["sandbox_id"]
    finally:
        fleet.shutdown_sandbox(created["sandbox_id"])


def healthy_ids(fleet: E2BToolkit, tenth: str) -> set[str]:
    ids = {entry["sandbox_id"] for entry in fleet.list_managed_sandboxes()["sandboxes"]}
    assert len(ids) == FLEET + 1 and tenth in ids
    return ids - {tenth}


def test_every_sandbox_answers(fleet: E2BToolkit, tenth: str) -> None:
    healthy = healthy_ids(fleet, tenth)

    outcome = fleet.run_in_all_sandboxes(CODE, timeout_each=30)

    assert outcome["status"] == "success"
    assert set(outcome["result"]) == healthy | {tenth}
    for sandbox_id, result in outcome["result"].items():
        assert result["status"] == "success", (sandbox_id, result)
        assert result["results"][0]["text"].endswith(" says hi")
    assert outcome["message"] == "10 of 10 succeeded"
    json.dumps(outcome)


def test_a_sandbox_killed_behind_the_registry_back_fails_alone(fleet: E2BToolkit, tenth: str) -> None:
    healthy = healthy_ids(fleet, tenth)
    Sandbox.kill(tenth, **fleet.settings.sdk_options())

    outcome = fleet.run_in_all_sandboxes(CODE, timeout_each=30)

    assert set(outcome["result"]) == healthy | {tenth}
    assert outcome["result"][tenth]["status"] == "error"
    assert tenth in outcome["result"][tenth]["message"]
    for sandbox_id in healthy:
        assert outcome["result"][sandbox_id]["status"] == "success", outcome["result"][sandbox_id]
    assert outcome["message"] == "9 of 10 succeeded"
    json.dumps(outcome)


def test_a_slow_sandbox_times_out_alone(fleet: E2BToolkit, tenth: str) -> None:
    healthy = healthy_ids(fleet, tenth)
    assert fleet.run_command("touch /home/user/slow", sandbox_id=tenth)["status"] == "success"

    outcome = fleet.run_in_all_sandboxes(CODE, timeout_each=3)

    assert set(outcome["result"]) == healthy | {tenth}
    assert outcome["result"][tenth]["status"] == "error"
    assert outcome["result"][tenth]["message"]
    for sandbox_id in healthy:
        result = outcome["result"][sandbox_id]
        assert result["status"] == "success", result
        assert result["results"][0]["text"].endswith(" says hi")
    assert outcome["message"] == "9 of 10 succeeded"
    json.dumps(outcome)


@pytest.mark.parametrize("timeout_each", [0, -5, "3"])
def test_a_bad_timeout_each_is_an_error_dict(fleet: E2BToolkit, timeout_each: object) -> None:
    outcome = fleet.run_in_all_sandboxes("1", timeout_each=timeout_each)  # type: ignore[arg-type]

    assert outcome["status"] == "error"
    assert "timeout_each" in outcome["message"]


def test_no_sandboxes_no_results(stack_env: dict[str, str], queue_worker: WorkerProcess) -> None:
    empty = Settings.from_env(stack_env, namespace=f"empty-{uuid.uuid4().hex[:8]}")
    toolkit = E2BToolkit(SandboxManager(settings=empty), auto_create_default=False)

    outcome = toolkit.run_in_all_sandboxes("1")

    assert outcome == {"status": "success", "result": {}, "results": {}, "message": "0 of 0 succeeded"}
