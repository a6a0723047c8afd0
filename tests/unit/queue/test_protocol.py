"""The task protocol: stable names, the job flag, and the one deadline both sides work to."""

from __future__ import annotations

import json

import pytest

from e2bq import protocol
from e2bq.client.dispatch import Dispatcher
from e2bq.config import Settings
from e2bq.errors import InvalidInputError
from e2bq.protocol import (
    NO_DEADLINE,
    QUEUE_MARGIN,
    WORKER_MARGIN,
    CreateSandboxArgs,
    Deadline,
    RunCodeArgs,
    RunCommandArgs,
    TransferArgs,
    WaitForPortArgs,
    deadline,
)

SETTINGS = Settings(create_wait=100)
NAMES = {
    "CREATE_SANDBOX": "e2bq.create_sandbox",
    "CONNECT_SANDBOX": "e2bq.connect_sandbox",
    "KILL_SANDBOX": "e2bq.kill_sandbox",
    "RUN_CODE": "e2bq.run_code",
    "RUN_COMMAND": "e2bq.run_command",
    "UPLOAD_FILE": "e2bq.upload_file",
    "DOWNLOAD_FILE": "e2bq.download_file",
    "PUBLIC_URL": "e2bq.public_url",
    "WAIT_FOR_PORT": "e2bq.wait_for_port",
    "CANCEL_JOB": "e2bq.cancel_job",
    "RUN_CODE_EACH": "e2bq.run_code_each",
    "MAP_LANES": "e2bq.map_lanes",
    "PAUSE_SANDBOX": "e2bq.pause_sandbox",
    "RESUME_SANDBOX": "e2bq.resume_sandbox",
    "FORK_SANDBOX": "e2bq.fork_sandbox",
    "CREATE_SNAPSHOT": "e2bq.create_snapshot",
    "LIST_SNAPSHOTS": "e2bq.list_snapshots",
    "DELETE_SNAPSHOT": "e2bq.delete_snapshot",
}


def test_task_names_are_stable_strings_on_the_wire() -> None:
    for constant, name in NAMES.items():
        task = getattr(protocol, constant)
        assert task == name and isinstance(task, str)
        assert json.loads(json.dumps({"task": task})) == {"task": name}


def test_the_job_flag_is_the_only_thing_that_makes_a_job() -> None:
    assert protocol.is_job(RunCodeArgs(sandbox_id="s", code="1", job=True))
    assert not protocol.is_job(RunCodeArgs(sandbox_id="s", code="1", job=False))
    assert not protocol.is_job({"sandbox_id": "s", "code": "1"})
    assert not protocol.is_job({"job": "yes"})


def test_a_synchronous_call_is_stopped_by_the_worker_before_its_caller_gives_up() -> None:
    args = RunCodeArgs(sandbox_id="s", code="1", job=False, timeout=42)
    bounds = deadline(protocol.RUN_CODE, args, SETTINGS)
    assert bounds == Deadline(work=42, stop=42 + WORKER_MARGIN, wait=42 + QUEUE_MARGIN)
    assert bounds.stop is not None and bounds.wait is not None and 42 < bounds.stop < bounds.wait


@pytest.mark.parametrize(
    ("task", "args", "work"),
    [
        (protocol.RUN_CODE, RunCodeArgs(sandbox_id="s", code="1", job=False), protocol.DEFAULT_CODE_TIMEOUT),
        (protocol.RUN_COMMAND, RunCommandArgs(sandbox_id="s", command="ls", job=False), 60.0),
        (protocol.RUN_COMMAND, RunCommandArgs(sandbox_id="s", command="ls", job=False, timeout=None), 60.0),
        (
            protocol.WAIT_FOR_PORT,
            WaitForPortArgs(sandbox_id="s", port=80, wait_seconds=2),
            2 + protocol.PORT_PROBE,
        ),
    ],
)
def test_a_bound_left_out_is_the_tasks_default(task: str, args: dict[str, object], work: float) -> None:
    assert deadline(task, args, SETTINGS) == Deadline.bounded(work)


@pytest.mark.parametrize("task", [protocol.RUN_CODE, protocol.RUN_COMMAND])
def test_a_job_has_no_deadline(task: str) -> None:
    job = {"sandbox_id": "s", "code": "1", "command": "x", "job": True}
    assert deadline(task, job, SETTINGS) == NO_DEADLINE
    assert deadline(protocol.CANCEL_JOB, {"job_id": "j"}, SETTINGS) == NO_DEADLINE
    assert deadline(protocol.MAP_LANES, {"job_id": "j", "lanes": []}, SETTINGS) == NO_DEADLINE


def test_calls_the_sdk_bounds_itself_are_only_waited_for() -> None:
    create = CreateSandboxArgs(timeout=300, metadata={}, namespace="n", set_default=False, options={})
    assert deadline(protocol.CREATE_SANDBOX, create, SETTINGS) == Deadline(
        work=None, stop=None, wait=100 + protocol.MAKE_SANDBOX + QUEUE_MARGIN
    )
    assert deadline(protocol.KILL_SANDBOX, {"sandbox_id": "s"}, SETTINGS).wait == 60 + QUEUE_MARGIN
    assert deadline(protocol.PUBLIC_URL, {"sandbox_id": "s", "port": 80}, SETTINGS).wait == 30 + QUEUE_MARGIN
    transfer = TransferArgs(sandbox_id="s", sandbox_path="/tmp/x", transfer_id="t")
    assert deadline(protocol.UPLOAD_FILE, transfer, SETTINGS).wait == protocol.TRANSFER_TIMEOUT
    assert deadline(protocol.PAUSE_SANDBOX, {"sandbox_id": "s"}, SETTINGS).wait == 60 + QUEUE_MARGIN
    assert deadline(protocol.RESUME_SANDBOX, {"sandbox_id": "s"}, SETTINGS).wait == 60 + QUEUE_MARGIN
    fork = deadline(protocol.FORK_SANDBOX, {"sandbox_id": "s"}, SETTINGS)
    assert fork.wait == protocol.FORK_SANDBOXES + QUEUE_MARGIN and fork.stop is None
    assert (
        deadline(protocol.CREATE_SNAPSHOT, {"sandbox_id": "s"}, SETTINGS).wait
        == protocol.SNAPSHOT + QUEUE_MARGIN
    )
    assert deadline(protocol.LIST_SNAPSHOTS, {"node": None}, SETTINGS).wait == 60 + QUEUE_MARGIN
    assert deadline(protocol.DELETE_SNAPSHOT, {"snapshot_id": "x"}, SETTINGS).wait == 60 + QUEUE_MARGIN
    with pytest.raises(ValueError, match="unknown task"):
        deadline("e2bq.no_such_task", {}, SETTINGS)


def test_the_client_waits_exactly_as_long_as_the_deadline_says() -> None:
    dispatcher = Dispatcher(SETTINGS)
    args = RunCodeArgs(sandbox_id="s", code="1", job=False, timeout=7)
    assert dispatcher.wait_for(protocol.RUN_CODE, args) == deadline(protocol.RUN_CODE, args, SETTINGS).wait
    with pytest.raises(ValueError, match="nobody waits"):
        dispatcher.wait_for(protocol.RUN_CODE, RunCodeArgs(sandbox_id="s", code="1", job=True))


@pytest.mark.parametrize("port", [0, 65536, -1, True, 80.0, "80", None])
def test_a_port_outside_1_to_65535_is_refused(port: object) -> None:
    with pytest.raises(InvalidInputError, match="between 1 and 65535"):
        protocol.check_port(port)


def test_a_port_number_passes() -> None:
    assert protocol.check_port(1) == 1 and protocol.check_port(65535) == 65535
