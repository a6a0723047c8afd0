"""What e2bq keeps in Redis beside Celery's own keys: the key layout, the one way to connect, and a
module per store (jobs, sandbox registry, file transfers, creation shaping)."""
