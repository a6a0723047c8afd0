"""The sandbox host restarted (same address, same key): its sandboxes are gone. Work on one ends with
an error saying it is not running, the registry forgets it, and the toolkit's default sandbox is
replaced on next use, with a message that says so."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.faults.conftest import Restartable, Stack, build_stack, job_ended
from tests.procs import SandboxHostProcess, free_port, redis_server, sandbox_host, wait_for


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Restartable[SandboxHostProcess]]:
    """A sandboxd that comes back on the same port with the same API key (and a new state folder)."""
    port, runs = free_port(), itertools.count()

    def run() -> object:
        folder = tmp_path / f"host-{next(runs)}"
        folder.mkdir()
        return sandbox_host(folder, port=port)

    server: Restartable[SandboxHostProcess] = Restartable(run)  # type: ignore[arg-type]
    with server.running():
        yield server


@pytest.fixture
def stack(tmp_path: Path, host: Restartable[SandboxHostProcess]) -> Iterator[Stack]:
    with redis_server(tmp_path) as url, build_stack(tmp_path, url, host.current) as built:
        yield built


@pytest.mark.slow
def test_sandboxes_of_a_restarted_host_are_reported_gone_and_the_default_is_replaced(
    stack: Stack, host: Restartable[SandboxHostProcess]
) -> None:
    stack.worker()
    toolkit = stack.toolkit()
    default = toolkit.list_managed_sandboxes()["default_sandbox_id"]
    other = toolkit.create_sandbox()["sandbox_id"]
    assert toolkit.run_python_code("x = 1")["status"] == "success"
    job_id = toolkit.run_command_background("sleep 600", sandbox_id=other)["job_id"]
    wait_for(lambda: toolkit.get_job_status(job_id).get("pid"), 60, "the job's process to start")

    restarted = host.restart()
    assert restarted.url == stack.env["E2B_API_URL"]

    # The job that ran there ends, as an error (its stream broke when the host went away).
    record = job_ended(toolkit, job_id, 60, "the job to end")
    assert record["status"] == "error", record
    assert f"sandbox {other}" in record["message"]
    # Work on a sandbox that is gone: a clear error, and the registry forgets it.
    answer = toolkit.run_python_code("1 + 1", sandbox_id=other)
    assert answer["status"] == "error", answer
    assert f"sandbox {other} is not running" in answer["message"]
    listed = toolkit.list_managed_sandboxes()
    assert other not in {entry["sandbox_id"] for entry in listed["sandboxes"]}
    # The default sandbox: the call that finds it gone says so and the next one gets a new default;
    # or, once the node's heartbeat carries the host's new start, the call gets a new default at once.
    first = toolkit.run_python_code("1 + 1")
    if first["status"] == "error":
        assert f"sandbox {default} is not running" in first["message"], first
    second = first if first["status"] == "success" else toolkit.run_python_code("1 + 1")
    assert second["status"] == "success", second
    assert second["results"][0]["text"] == "2"
    assert second["sandbox_id"] != default
    assert f"the default sandbox {default} was gone" in second["message"]
    assert f"a new default sandbox {second['sandbox_id']} replaces it" in second["message"]
    assert toolkit.list_managed_sandboxes()["default_sandbox_id"] == second["sandbox_id"]
    fresh = toolkit.run_python_code("x")  # the new default's state starts empty
    assert fresh["status"] == "error" and fresh["error"]["name"] == "NameError", fresh
