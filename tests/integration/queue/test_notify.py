"""Completion you can wait on: wait_job, signed callbacks, on_done tasks and the job event stream,
against a real worker, a real HTTP receiver in this process and a real second Celery worker."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from e2bq import E2BToolkit, JobEvents, Settings
from e2bq.stores.outbox import Outbox
from tests.callback_receiver import ondone_worker, received_key, receiver
from tests.procs import SandboxHostProcess, free_port, queue_env, wait_for

SECRET = f"secret-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def stack_env(redis_url: str, sandboxd: SandboxHostProcess) -> dict[str, str]:
    """This module's queue, with a callback key and short retries (0.2 s, doubling)."""
    env = queue_env(redis_url, sandboxd, "notify")
    return {**env, "E2BQ_CALLBACK_SECRET": SECRET, "E2BQ_CALLBACK_BACKOFF": "0.2"}


@pytest.fixture
def outbox(client_env: dict[str, str]) -> Outbox:
    return Outbox(Settings.from_env())


def delivered(outbox: Outbox, job_id: str) -> str:
    """The delivery's outcome, once it is over."""
    return str(wait_for(lambda: outbox.state(job_id).get("outcome"), 60, f"job {job_id}'s delivery to close"))


def test_a_job_s_end_is_posted_once_signed_with_its_final_status(toolkit: E2BToolkit, outbox: Outbox) -> None:
    with receiver(SECRET) as hooks:
        job_id = toolkit.run_python_code_background("print('hi')\n6 * 7", callback_url=hooks.url)["job_id"]
        (got,) = hooks.wait_for(1, 60)
        assert delivered(outbox, job_id) == "delivered"
        assert len(hooks.received) == 1
    assert got.record == toolkit.get_job_status(job_id)
    assert (got.record["status"], got.record["job_id"]) == ("done", job_id)
    assert got.record["result"]["results"][0]["text"] == "42"
    assert (got.headers["X-E2BQ-Job-Id"], got.headers["X-E2BQ-Delivery"]) == (job_id, f"{job_id}.end")
    assert got.headers["X-E2BQ-Signature"].startswith("sha256=")


def test_a_receiver_that_fails_twice_gets_exactly_one_accepted_delivery(
    toolkit: E2BToolkit, outbox: Outbox
) -> None:
    with receiver(SECRET, answers=(500, 503)) as hooks:
        job_id = toolkit.run_command_background("exit 3", callback_url=hooks.url)["job_id"]
        hooks.wait_for(1, 60)
        assert delivered(outbox, job_id) == "delivered"
        received = list(hooks.received)
    assert [r.answered for r in received] == [500, 503, 200]
    assert [r.headers["X-E2BQ-Attempt"] for r in received] == ["1", "2", "3"]
    assert {r.headers["X-E2BQ-Delivery"] for r in received} == {f"{job_id}.end"}
    assert received[-1].record["status"] == "error"  # a command that exits non-zero
    assert received[-1].record["result"]["exit_code"] == 3


def test_a_receiver_that_is_down_does_not_delay_the_job_s_end(toolkit: E2BToolkit, outbox: Outbox) -> None:
    down = f"http://127.0.0.1:{free_port()}/nobody-listens"
    job_id = toolkit.run_python_code_background("1 + 1", callback_url=down)["job_id"]
    ended = toolkit.wait_job(job_id, timeout=60)
    assert ended["status"] == "done" and not ended.get("timed_out"), ended
    # the job ended; its delivery goes on being retried after the end
    wait_for(lambda: int(outbox.state(job_id).get("attempts") or 0) >= 2, 60, "a second attempt")
    assert toolkit.get_job_status(job_id)["status"] == "done"


def test_a_killed_job_calls_back_cancelled(toolkit: E2BToolkit) -> None:
    with receiver(SECRET) as hooks:
        job_id = toolkit.run_command("sleep 600", background=True, callback_url=hooks.url)["job_id"]
        wait_for(lambda: toolkit.get_job_status(job_id).get("pid"), 60, "the sleep to start")
        assert toolkit.kill_job(job_id)["status"] == "cancelled"
        (got,) = hooks.wait_for(1, 60)
    assert (got.record["status"], got.record["message"]) == ("cancelled", "cancelled by kill_job")


def test_wait_job_returns_at_the_end_and_honours_its_timeout(toolkit: E2BToolkit) -> None:
    quick = toolkit.run_python_code_background("import time\ntime.sleep(0.5)\n'slept'")["job_id"]
    ended = toolkit.wait_job(quick, timeout=60)
    assert ended == toolkit.get_job_status(quick)
    assert ended["status"] == "done" and "timed_out" not in ended

    slow = toolkit.run_command_background("sleep 600")["job_id"]
    began = time.monotonic()
    waited = toolkit.wait_job(slow, timeout=1)
    spent = time.monotonic() - began
    assert (waited["status"], waited.get("timed_out"), waited["message"]) == (
        "running", True, "still running after 1 s",
    )
    assert 1 <= spent < 15, spent
    assert toolkit.kill_job(slow)["status"] == "cancelled"
    assert toolkit.wait_job(slow, timeout=0)["status"] == "cancelled"


def test_wait_job_refuses_bad_input_with_an_error(bare_toolkit: E2BToolkit) -> None:
    for job_id, timeout, words in (
        (42, None, "job_id must be"),
        ("", None, "job_id must be"),
        ("some-job", -1, "timeout must be"),
        ("some-job", "soon", "timeout must be"),
        (f"no-such-{uuid.uuid4().hex}", 1, "no job"),
    ):
        answer = bare_toolkit.wait_job(job_id, timeout=timeout)  # type: ignore[arg-type]
        assert answer["status"] == "error" and words in answer["message"], answer


def test_wait_job_waits_for_a_map_and_reports_its_counts(bare_toolkit: E2BToolkit) -> None:
    try:
        job_id = bare_toolkit.map_python_code(["1 + 1", "2 + 2", "1 / 0"], pool_size=1)["job_id"]
        ended = bare_toolkit.wait_job(job_id, timeout=180)
    finally:
        bare_toolkit.shutdown_all_sandboxes()
    assert ended["status"] == "done", ended
    assert (ended["total"], ended["done"], ended["failed"]) == (3, 2, 1)


def test_callback_options_are_checked_before_anything_is_queued(toolkit: E2BToolkit) -> None:
    bad = toolkit.run_python_code_background("1", callback_url="ftp://example.test/x")
    assert bad["status"] == "error" and "http:// or https://" in bad["message"]
    sync = toolkit.run_command("true", callback_url="http://example.test/x")
    assert sync["status"] == "error" and "background=True" in sync["message"]
    no_task = toolkit.run_command_background("true", on_done_queue="q")
    assert no_task["status"] == "error" and "on_done" in no_task["message"]


@pytest.fixture
def ondone_queue(stack_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    queue = f"ondone-{uuid.uuid4().hex[:8]}"
    with ondone_worker(tmp_path, stack_env, queue):
        yield queue


def test_on_done_sends_the_final_status_to_a_task_of_another_app(
    toolkit: E2BToolkit, ondone_queue: str, stack_env: dict[str, str]
) -> None:
    raw = redis.Redis.from_url(stack_env["E2BQ_REDIS_URL"], decode_responses=True)
    with receiver(SECRET) as hooks:
        job_id = toolkit.run_python_code_background(
            "6 * 7", callback_url=hooks.url, on_done="tests.ondone.record", on_done_queue=ondone_queue
        )["job_id"]
        (posted,) = hooks.wait_for(1, 60)
    wait_for(lambda: raw.llen(received_key(job_id)), 60, "the on_done task to run")
    (sent,) = [json.loads(item) for item in raw.lrange(received_key(job_id), 0, -1)]
    assert sent == posted.record == toolkit.get_job_status(job_id)
    assert sent["status"] == "done" and sent["on_done"] == "tests.ondone.record"


def test_a_job_s_events_come_in_order_and_e2bq_jobs_follow_prints_them(
    toolkit: E2BToolkit, client_env: dict[str, str]
) -> None:
    job_id = toolkit.run_python_code_background("1 + 1")["job_id"]
    assert toolkit.wait_job(job_id, timeout=60)["status"] == "done"
    history = JobEvents(Settings.from_env()).history(job_id)
    assert [(e["event"], e["status"]) for e in history] == [
        ("queued", "running"), ("started", "running"), ("ended", "done"),
    ]
    assert history[1]["worker"] and history[0]["at"] <= history[1]["at"] <= history[2]["at"]
    follow = subprocess.run(
        [sys.executable, "-m", "e2bq.cli", "jobs", "follow", "--job", job_id, "--from-start"],
        capture_output=True, text=True, timeout=60, env=None, check=True,
    )
    lines = follow.stdout.splitlines()
    assert [line.split()[2:5] for line in lines] == [
        [job_id, "queued", "running"], [job_id, "started", "running"], [job_id, "ended", "done"],
    ]


def test_e2bq_jobs_follow_from_now_shows_a_job_live_and_stops_at_its_end(
    toolkit: E2BToolkit, client_env: dict[str, str]
) -> None:
    job_id = uuid.uuid4().hex
    follower = subprocess.Popen(
        [sys.executable, "-m", "e2bq.cli", "jobs", "follow", "--job", job_id],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    raw = redis.Redis.from_url(client_env["E2BQ_REDIS_URL"])
    try:
        # it follows from now once it blocks on the stream: then nothing of the job can pass it by
        wait_for(lambda: any(c.get("cmd") == "xread" for c in raw.client_list()), 60, "the follower to block")
        toolkit.run_python_code_background("1 + 1", job_id=job_id)
        out, err = follower.communicate(timeout=60)
    finally:
        follower.kill()
        follower.wait()
    assert follower.returncode == 0, err
    assert [line.split()[2:5] for line in out.splitlines()] == [
        [job_id, "queued", "running"], [job_id, "started", "running"], [job_id, "ended", "done"],
    ]
