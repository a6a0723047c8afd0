"""e2bq's Celery workers (the queue arrives with the client library)."""
