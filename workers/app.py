"""The worker's Celery app: e2bq's shared configuration plus the tasks. ``e2bq worker`` runs it."""

from __future__ import annotations

from e2bq.celery_app import make_celery
from e2bq.config import Settings

app = make_celery(Settings.from_env())
app.conf.imports = ("workers.tasks",)
