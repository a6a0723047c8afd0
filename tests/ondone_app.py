"""A Celery app of its own, as an application linking its tasks to e2bq jobs with ``on_done``
would have: its one task keeps the final record it receives in Redis, for the test to read."""

from __future__ import annotations

import json
import os

import redis
from celery import Celery

from tests.callback_receiver import received_key

app = Celery("ondone", broker=os.environ["E2BQ_REDIS_URL"])
app.conf.update(task_serializer="json", accept_content=["json"])


@app.task(name="tests.ondone.record")
def record(final: dict[str, object]) -> None:
    client = redis.Redis.from_url(os.environ["E2BQ_REDIS_URL"])
    client.rpush(received_key(str(final["job_id"])), json.dumps(final))
