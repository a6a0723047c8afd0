"""The real stack for the framework adapters: Redis, the session's sandboxd and a worker, as the
queue tests have them (no model: tool calls are made as a model API would send them)."""

from __future__ import annotations

from tests.integration.queue.conftest import (  # noqa: F401
    bare_toolkit,
    client_env,
    queue_worker,
    redis_url,
    stack_env,
    toolkit,
)
