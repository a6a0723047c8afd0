"""Background jobs: accepted at once, then running (queued → started) → done, error or cancelled."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from e2bq import E2BToolkit, SandboxManager, Settings
from tests.procs import WorkerProcess, wait_for, worker

GATE = "/home/user/gate"
WAIT_FOR_GATE = (
    "import os, time\n"
    f"while not os.path.exists({GATE!r}):\n"
    "    time.sleep(0.02)\n"
    "print('through the gate')\n"
    "opened = True\n"
)


def ended(toolkit: E2BToolkit, job_id: str, timeout: float = 60) -> Any:
    """The job's record once it has left ``running``."""
    return wait_for(
        lambda: (s := toolkit.get_job_status(job_id))["status"] != "running" and s,
        timeout,
        f"job {job_id} to end",
    )


@pytest.fixture
def idle_queue(client_env: dict[str, str]) -> str:
    """A queue no worker serves (yet)."""
    return f"{client_env['E2BQ_QUEUE']}-idle-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def idle_toolkit(toolkit: E2BToolkit, idle_queue: str) -> E2BToolkit:
    """A client of the same registry and job store whose tasks go to the idle queue."""
    manager = SandboxManager(settings=Settings.from_env(queue=idle_queue))
    return E2BToolkit(manager, auto_create_default=False)


@pytest.fixture
def idle_queue_worker(
    idle_queue: str, client_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[[], WorkerProcess]]:
    """Start a worker on the idle queue, when the test says so; it is stopped afterwards."""
    with contextlib.ExitStack() as stack:
        yield lambda: stack.enter_context(worker(tmp_path, {**client_env, "E2BQ_QUEUE": idle_queue}))


def test_a_code_job_is_accepted_at_once_and_ends_done(toolkit: E2BToolkit) -> None:
    accepted = toolkit.run_python_code_background("print('hi')\nanswer = 42")

    assert accepted["status"] == "accepted"
    assert isinstance(accepted["job_id"], str) and accepted["job_id"]
    record = ended(toolkit, accepted["job_id"])
    assert record["status"] == "done"
    assert record["job_id"] == accepted["job_id"]
    assert record["kind"] == "code"
    assert record["result"]["status"] == "success"
    assert record["result"]["logs"]["stdout"] == ["hi\n"]
    assert "hi" in str(record["output"])
    json.dumps(record)
    assert toolkit.run_python_code("answer")["results"][0]["text"] == "42"


def test_a_job_reports_queued_then_started_then_done(
    toolkit: E2BToolkit, idle_toolkit: E2BToolkit, idle_queue_worker: Callable[[], WorkerProcess]
) -> None:
    accepted = idle_toolkit.run_python_code_background(WAIT_FOR_GATE)
    job_id = accepted["job_id"]

    queued = toolkit.get_job_status(job_id)
    assert queued["status"] == "running"
    assert queued["state"] == "queued"
    assert queued["started_at"] is None

    idle_queue_worker()
    started = wait_for(
        lambda: (s := toolkit.get_job_status(job_id)).get("state") == "started" and s, 60, "the job to start"
    )
    assert started["status"] == "running"
    assert started["started_at"] is not None

    assert toolkit.run_command(f"touch {GATE}")["status"] == "success"
    record = ended(toolkit, job_id)
    assert record["status"] == "done"
    assert record["result"]["logs"]["stdout"] == ["through the gate\n"]


def test_a_command_job_ends_done_with_its_output(toolkit: E2BToolkit) -> None:
    accepted = toolkit.run_command_background("echo first; echo second >&2; echo third")

    assert accepted["status"] == "accepted"
    record = ended(toolkit, accepted["job_id"])
    assert record["status"] == "done"
    assert record["kind"] == "command"
    assert record["result"]["exit_code"] == 0
    assert record["result"]["stdout"] == "first\nthird\n"
    assert sorted(record["output"].splitlines()) == ["first", "second", "third"]  # two pipes: any order


def test_run_command_with_background_is_a_job(toolkit: E2BToolkit) -> None:
    accepted = toolkit.run_command("echo from the background", background=True)

    assert accepted["status"] == "accepted"
    assert ended(toolkit, accepted["job_id"])["status"] == "done"


def test_code_that_raises_ends_the_job_in_error_with_its_result(toolkit: E2BToolkit) -> None:
    accepted = toolkit.run_python_code_background("raise ValueError('bad value')")

    record = ended(toolkit, accepted["job_id"])
    assert record["status"] == "error"
    result = record["result"]
    assert result["status"] == "error"
    assert result["error"]["name"] == "ValueError"
    assert result["error"]["value"] == "bad value"
    assert "ValueError" in str(record["message"])


def test_a_command_exiting_non_zero_ends_the_job_in_error(toolkit: E2BToolkit) -> None:
    accepted = toolkit.run_command_background("echo going; exit 3")

    record = ended(toolkit, accepted["job_id"])
    assert record["status"] == "error"
    assert record["result"]["exit_code"] == 3
    assert record["result"]["stdout"] == "going\n"
    assert "3" in str(record["message"])


def test_a_custom_job_id_is_used_and_cannot_be_reused(toolkit: E2BToolkit) -> None:
    job_id = f"my-job-{uuid.uuid4().hex[:8]}"

    accepted = toolkit.run_command_background("echo once", job_id=job_id)
    assert accepted == {"status": "accepted", "job_id": job_id, "sandbox_id": accepted["sandbox_id"]}
    assert ended(toolkit, job_id)["status"] == "done"

    again = toolkit.run_python_code_background("print('twice')", job_id=job_id)
    assert again["status"] == "error"
    assert job_id in again["message"]
    record = toolkit.get_job_status(job_id)
    assert record["kind"] == "command"
    assert record["result"]["stdout"] == "once\n"


@pytest.mark.parametrize("job_id", ["", "   ", 7])
def test_a_bad_custom_job_id_is_an_error_dict(bare_toolkit: E2BToolkit, job_id: object) -> None:
    result = bare_toolkit.run_command_background("echo x", sandbox_id="any", job_id=job_id)  # type: ignore[arg-type]

    assert result["status"] == "error"
    assert "job_id" in result["message"]


def test_an_unknown_job_is_not_found(bare_toolkit: E2BToolkit) -> None:
    assert bare_toolkit.get_job_status("no-such-job")["status"] == "not_found"
    assert bare_toolkit.get_job_status(None)["status"] == "not_found"  # type: ignore[arg-type]
    assert bare_toolkit.kill_job("no-such-job")["status"] == "not_found"


def test_the_output_tail_grows_while_the_job_runs(toolkit: E2BToolkit) -> None:
    accepted = toolkit.run_command_background(
        f"echo step one; while [ ! -e {GATE} ]; do sleep 0.02; done; echo two"
    )
    job_id = accepted["job_id"]

    running = wait_for(
        lambda: "step one" in (s := toolkit.get_job_status(job_id)).get("output", "") and s,
        30,
        "the first line of output",
    )
    assert running["status"] == "running"
    assert running["state"] == "started"

    toolkit.run_command(f"touch {GATE}")
    record = ended(toolkit, job_id)
    assert record["status"] == "done"
    assert record["output"] == "step one\ntwo\n"


@pytest.mark.parametrize(
    "start",
    [
        lambda kit, line: kit.run_command_background(f"python3 -c \"print({line!r} * 40000)\"; echo end"),
        lambda kit, line: kit.run_python_code_background(f"print({line!r} * 40000)\nprint('end')"),
    ],
    ids=["command", "code"],
)
def test_a_long_output_keeps_a_bounded_tail_of_whole_characters(
    toolkit: E2BToolkit, start: Callable[[E2BToolkit, str], Any]
) -> None:
    # 200 kB of two- and three-byte characters: trimming the tail at a byte offset splits them.
    job_id = start(toolkit, "é€")["job_id"]

    record = ended(toolkit, job_id)

    assert record["status"] == "done", record
    tail = record["output"]
    assert tail.endswith("é€\nend\n")
    assert 0 < len(tail.encode()) <= 2 * toolkit.settings.output_tail_bytes
    assert set(tail[:-5]) <= {"é", "€"}


def test_killing_a_job_that_ended_is_refused(toolkit: E2BToolkit) -> None:
    job_id = toolkit.run_command_background("true")["job_id"]
    assert ended(toolkit, job_id)["status"] == "done"

    refused = toolkit.kill_job(job_id)

    assert refused["status"] == "not_cancelled"
    assert "already ended" in refused["message"]
    assert toolkit.get_job_status(job_id)["status"] == "done"
