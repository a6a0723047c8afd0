"""e2bq: a distributed job queue for code sandboxes.

from e2bq import SandboxManager, E2BToolkit

manager = SandboxManager(default_timeout=360)
toolkit = E2BToolkit(manager, auto_create_default=True)
toolkit.run_python_code("print('hello')")

Where things live: ``e2bq.client`` is the library applications call (toolkit, manager, dispatch,
file transfers); the contracts client and workers share sit at the top level (``protocol``: task
names, arguments and deadlines; ``types``: every result and record; ``config``; ``errors``;
``celery_app``); ``e2bq.stores`` holds everything kept in Redis; ``e2bq.sandboxd`` is the local
sandbox host; the workers are the ``workers`` package beside this one.
"""

from __future__ import annotations

# Configuration
from .config import Settings

# Errors (all derive from E2BQError)
from .errors import (
    CapacityError,
    ConfigurationError,
    E2BQError,
    ExecutionTimeoutError,
    InvalidInputError,
    JobCancelledError,
    JobNotFoundError,
    NodeLostError,
    NotFoundError,
    ProviderError,
    QueueError,
    SandboxNotFoundError,
    SandboxPausedError,
)

# The documented API
from .client.manager import SandboxManager, SandboxSlot
from .client.toolkit import E2BToolkit
# The same API on asyncio
from .client.aio import AsyncE2BToolkit, AsyncSandboxManager

# Job events and callbacks
from .callbacks import verify as verify_callback
from .stores.events import JobEvents

# Shapes of the dicts the API returns
from .types import TERMINAL_STATES, JobEvent, JobRecord, JobStatus, NodeInfo, SandboxEntry, ToolResult

__version__ = "0.1.0"

__all__ = [
    # The documented API
    "E2BToolkit",
    "SandboxManager",
    "SandboxSlot",
    # The same API on asyncio
    "AsyncE2BToolkit",
    "AsyncSandboxManager",
    # Configuration
    "Settings",
    # Errors
    "CapacityError",
    "ConfigurationError",
    "E2BQError",
    "ExecutionTimeoutError",
    "InvalidInputError",
    "JobCancelledError",
    "JobNotFoundError",
    "NodeLostError",
    "NotFoundError",
    "ProviderError",
    "QueueError",
    "SandboxNotFoundError",
    "SandboxPausedError",
    # Job events and callbacks
    "JobEvents",
    "verify_callback",
    # Result shapes
    "TERMINAL_STATES",
    "JobEvent",
    "JobRecord",
    "JobStatus",
    "NodeInfo",
    "SandboxEntry",
    "ToolResult",
    "__version__",
]
