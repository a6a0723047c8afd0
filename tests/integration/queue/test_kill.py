"""kill_job stops the work itself — queued, running, with no worker alive, or after its worker died."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.result import AsyncResult
from e2b_code_interpreter import Sandbox

from e2bq import E2BToolkit, SandboxManager, Settings
from tests.procs import WorkerProcess, redis_server, start_worker, wait_for, worker

GATE = "/home/user/gate"
MARKER = "/home/user/marker"
WAIT_FOR_GATE = f"while [ ! -e {GATE} ]; do sleep 0.05; done"
MAKE_MARKER = f"open({MARKER!r}, 'w').close()"


@pytest.fixture(scope="module")
def queue_worker(
    stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """This module's worker: prefork, two processes (revoke and cancel behave differently there)."""
    folder = Path(tmp_path_factory.mktemp("worker"))
    with worker(folder, stack_env, "--pool", "prefork", "--concurrency", "2") as running:
        yield running


def status(toolkit: E2BToolkit, job_id: str) -> Any:
    return toolkit.get_job_status(job_id)


def task_settled(toolkit: E2BToolkit, task_id: str, timeout: float = 60) -> str:
    """Wait until a worker has dealt with the task (run it, refused it, or dropped it as revoked)."""
    result = AsyncResult(task_id, app=toolkit.dispatcher.app)
    wait_for(result.ready, timeout, f"a worker to settle task {task_id}")
    return str(result.state)


def sandbox_processes(toolkit: E2BToolkit) -> list[str]:
    listing = toolkit.run_command("ps -eo args")
    assert listing["status"] == "success", listing
    return [line.strip() for line in listing["stdout"].splitlines()[1:]]


def marker_exists(toolkit: E2BToolkit) -> bool:
    answer = toolkit.run_python_code(f"import os\nos.path.exists({MARKER!r})", timeout=30)
    assert answer["status"] == "success", answer
    return bool(answer["results"][0]["text"] == "True")


def open_gate(toolkit: E2BToolkit) -> None:
    """Open the gate straight through the SDK: the worker's slots may all be taken."""
    sandbox_id = toolkit.list_managed_sandboxes()["default_sandbox_id"]
    Sandbox.connect(sandbox_id, **toolkit.settings.sdk_options()).files.write(GATE, "")


def test_a_queued_job_that_is_killed_never_runs(toolkit: E2BToolkit) -> None:
    blockers = [toolkit.run_command_background(WAIT_FOR_GATE)["job_id"] for _ in range(2)]
    for job_id in blockers:
        wait_for(lambda j=job_id: status(toolkit, j).get("state") == "started", 60, "the slots to fill")
    queued = toolkit.run_python_code_background(MAKE_MARKER)["job_id"]
    assert status(toolkit, queued)["state"] == "queued"

    killed = toolkit.kill_job(queued)

    assert killed == {"status": "cancelled", "job_id": queued, "killed_proc": False, "result": "cancelled"}
    assert status(toolkit, queued)["status"] == "cancelled"
    open_gate(toolkit)
    for job_id in blockers:
        wait_for(lambda j=job_id: status(toolkit, j)["status"] == "done", 60, "the blockers to end")
    task_settled(toolkit, queued)
    record = status(toolkit, queued)
    assert record["status"] == "cancelled"
    assert record["started_at"] is None
    assert not marker_exists(toolkit)


def test_killing_running_code_interrupts_it(toolkit: E2BToolkit) -> None:
    job_id = toolkit.run_python_code_background(
        "import time\nprint('sleeping', flush=True)\ntime.sleep(30)\nwoke = True"
    )["job_id"]
    wait_for(lambda: "sleeping" in status(toolkit, job_id).get("output", ""), 60, "the code to run")

    assert toolkit.kill_job(job_id)["status"] == "cancelled"

    assert status(toolkit, job_id)["status"] == "cancelled"
    again = toolkit.kill_job(job_id)
    assert (again["status"], again["killed_proc"]) == ("not_cancelled", False)
    assert "already ended (cancelled)" in again["message"]
    # The kernel is free again at once (a 10 s bound, where the sleep would hold it 30 s),
    # and the cell did not get past its sleep.
    after = toolkit.run_python_code("'woke' in globals()", timeout=10)
    assert after["status"] == "success", after
    assert after["results"][0]["text"] == "False"
    task_settled(toolkit, job_id)
    assert status(toolkit, job_id)["status"] == "cancelled"


def test_killing_a_running_command_ends_its_process(toolkit: E2BToolkit) -> None:
    job_id = toolkit.run_command_background("sleep 30")["job_id"]
    wait_for(lambda: "sleep 30" in sandbox_processes(toolkit), 60, "sleep 30 to run in the sandbox")
    assert isinstance(status(toolkit, job_id)["pid"], int)

    assert toolkit.kill_job(job_id)["status"] == "cancelled"

    wait_for(lambda: "sleep 30" not in sandbox_processes(toolkit), 20, "sleep 30 to be gone")
    task_settled(toolkit, job_id)
    record = status(toolkit, job_id)
    assert record["status"] == "cancelled"
    assert record["message"] == "cancelled by kill_job"


def test_a_job_killed_while_no_worker_is_alive_never_runs(
    toolkit: E2BToolkit,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # A broker of its own: on the module's broker the live worker would hear the revoke (broadcasts
    # ignore queues) and hand it to a new worker at start-up (mingle). Here nobody hears it.
    sandbox_id = toolkit.list_managed_sandboxes()["default_sandbox_id"]
    with redis_server(tmp_path) as lonely_redis:
        monkeypatch.setenv("E2BQ_REDIS_URL", lonely_redis)
        monkeypatch.setenv("E2BQ_QUEUE", f"fresh-{uuid.uuid4().hex[:8]}")
        unserved = E2BToolkit(SandboxManager(), auto_create_default=False)
        job_id = unserved.run_python_code_background(MAKE_MARKER, sandbox_id=sandbox_id)["job_id"]

        assert unserved.kill_job(job_id)["status"] == "cancelled"
        with worker(tmp_path, dict(os.environ), "--pool", "prefork", "--concurrency", "2"):
            task_settled(unserved, job_id)
        record = status(unserved, job_id)
        assert record["status"] == "cancelled"
        assert record["started_at"] is None
    assert not marker_exists(toolkit)


def test_killing_a_job_whose_worker_died_ends_its_process(
    toolkit: E2BToolkit, client_env: dict[str, str], tmp_path: Path
) -> None:
    # The job runs on a worker of its own queue; the cancel goes through the module's queue.
    own_queue = f"doomed-{uuid.uuid4().hex[:8]}"
    doomed_client = E2BToolkit(
        SandboxManager(settings=Settings.from_env(client_env, queue=own_queue)), auto_create_default=False
    )
    doomed = start_worker(tmp_path, {**client_env, "E2BQ_QUEUE": own_queue})  # threads: one process
    try:
        job_id = doomed_client.run_command_background("sleep 40")["job_id"]
        wait_for(lambda: "sleep 40" in sandbox_processes(toolkit), 60, "sleep 40 to run in the sandbox")
        assert status(toolkit, job_id)["pid"]
    finally:
        doomed.proc.kill()
        doomed.proc.wait()
    assert "sleep 40" in sandbox_processes(toolkit)  # the work outlives its worker
    assert status(toolkit, job_id)["status"] == "running"

    assert toolkit.kill_job(job_id)["status"] == "cancelled"

    wait_for(lambda: "sleep 40" not in sandbox_processes(toolkit), 20, "sleep 40 to be gone")
    assert status(toolkit, job_id)["status"] == "cancelled"


def test_the_marker_check_sees_a_job_that_did_run(toolkit: E2BToolkit) -> None:
    # The same job, not killed, leaves the marker: the checks above can fail.
    job_id = toolkit.run_python_code_background(MAKE_MARKER)["job_id"]

    wait_for(lambda: status(toolkit, job_id)["status"] == "done", 60, "the job to end")
    assert marker_exists(toolkit)
