"""`e2bq job ID --follow` as a real process: a background command's lines arrive live, in order, on
the right stream, and the process exits with the command's exit code."""

from __future__ import annotations

import signal
import uuid

from e2bq import E2BToolkit
from tests.integration.cli.conftest import e2bq_process


def test_follow_prints_a_command_s_lines_live_in_order_and_exits_with_its_code(
    toolkit: E2BToolkit, stack_env: dict[str, str]
) -> None:
    gate = f"/home/user/gate-{uuid.uuid4().hex[:6]}"
    command = (
        "for i in 1 2 3 4 5; do echo line $i; sleep 0.1; done; "
        f"while [ ! -e {gate} ]; do sleep 0.05; done; "
        "for i in 6 7 8 9 10; do echo line $i; echo warn $i >&2; sleep 0.2; done; exit 3"
    )
    job_id = toolkit.run_command_background(command)["job_id"]
    follower = e2bq_process(stack_env, "job", job_id, "--follow")
    try:
        assert follower.stdout is not None and follower.stderr is not None
        first = [follower.stdout.readline() for _ in range(5)]
        assert first == [f"line {n}\n" for n in range(1, 6)]
        # The first lines came while the job waits at its gate: they were followed live.
        assert toolkit.get_job_status(job_id)["status"] == "running"
        opened = toolkit.run_command(f"touch {gate}")
        assert opened["status"] == "success", opened
        rest, errors = follower.communicate(timeout=120)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert rest == "".join(f"line {n}\n" for n in range(6, 11))
    warnings = [line for line in errors.splitlines() if line.startswith("warn")]
    assert warnings == [f"warn {n}" for n in range(6, 11)]
    assert follower.returncode == 3
    assert f"job {job_id} error" in errors


def test_ctrl_c_stops_following_and_leaves_the_job_running(
    toolkit: E2BToolkit, stack_env: dict[str, str]
) -> None:
    job_id = toolkit.run_command_background("echo started; sleep 120")["job_id"]
    follower = e2bq_process(stack_env, "job", job_id, "--follow")
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline() == "started\n"
        follower.send_signal(signal.SIGINT)
        _, errors = follower.communicate(timeout=60)
        assert follower.returncode == 130
        assert "stopped following" in errors and "Traceback" not in errors
        assert toolkit.get_job_status(job_id)["status"] == "running"
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
        toolkit.kill_job(job_id)
