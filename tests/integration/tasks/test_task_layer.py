"""The task layer with an in-process worker: queues, job claims, and errors as results."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from celery import Celery
from celery.worker import WorkController
from e2b_code_interpreter import Sandbox

from e2bq import E2BToolkit, SandboxManager
from e2bq import protocol as names
from e2bq.client.dispatch import Dispatcher
from e2bq.config import Settings
from e2bq.stores.jobs import JobStore


@pytest.fixture
def toolkit(celery_session_worker: WorkController) -> Iterator[E2BToolkit]:
    kit = E2BToolkit(SandboxManager(default_timeout=120), auto_create_default=True)
    try:
        yield kit
    finally:
        kit.shutdown_all_sandboxes()


def test_a_call_runs_on_the_worker_serving_the_configured_queue(toolkit: E2BToolkit) -> None:
    result = toolkit.run_python_code("6 * 7")
    assert result["status"] == "success", result
    assert result["results"][0]["text"] == "42"


def test_a_task_sent_to_another_queue_waits_there(
    celery_session_app: Celery, celery_session_worker: WorkController, task_env: dict[str, str]
) -> None:
    other = f"nobody-serves-{uuid.uuid4().hex[:8]}"
    celery_session_app.send_task(names.CANCEL_JOB, kwargs={"job_id": "x"}, queue=other)
    client = redis.Redis.from_url(task_env["E2BQ_REDIS_URL"])
    try:
        assert client.llen(other) == 1  # not consumed: this worker serves only its own queue
    finally:
        client.delete(other)


def test_a_job_cancelled_while_queued_never_runs(toolkit: E2BToolkit) -> None:
    sandbox_id = toolkit.list_managed_sandboxes()["sandboxes"][0]["sandbox_id"]
    settings = Settings.from_env()
    jobs = JobStore(settings)
    job_id = uuid.uuid4().hex
    jobs.create(job_id, "code", sandbox_id, settings.namespace)
    assert jobs.cancel(job_id)
    dispatcher = Dispatcher(settings)
    code = "open('/tmp/ran', 'w').write('yes')"
    dispatcher.submit(names.RUN_CODE, {"sandbox_id": sandbox_id, "code": code, "job": True}, task_id=job_id)
    outcome = dispatcher.wait(job_id, name=names.RUN_CODE, timeout=60)
    assert outcome == {"status": "error", "job_id": job_id, "message": "the job was cancelled before it ran"}
    assert toolkit.get_job_status(job_id)["status"] == "cancelled"
    assert toolkit.run_command("test -e /tmp/ran", sandbox_id=sandbox_id)["exit_code"] == 1


def test_a_sandbox_gone_behind_e2bqs_back_is_reported_and_forgotten(toolkit: E2BToolkit) -> None:
    made = toolkit.create_sandbox(timeout=120)
    sandbox_id = made["sandbox_id"]
    Sandbox.connect(sandbox_id).kill()
    result = toolkit.run_python_code("1", sandbox_id=sandbox_id)
    assert result["status"] == "error"
    assert sandbox_id in result["message"]
    listed = [entry["sandbox_id"] for entry in toolkit.list_managed_sandboxes()["sandboxes"]]
    assert sandbox_id not in listed
