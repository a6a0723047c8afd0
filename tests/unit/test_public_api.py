"""The public API is exactly what ``e2bq/__init__.py`` exports (as httpx's test_exported_members)."""

from __future__ import annotations

import types

import e2bq

EXPORTED = [
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


def test_all_is_pinned() -> None:
    assert e2bq.__all__ == EXPORTED


def test_every_exported_name_exists() -> None:
    for name in e2bq.__all__:
        assert hasattr(e2bq, name), name


def test_every_public_member_is_exported() -> None:
    public = {
        name
        for name, value in vars(e2bq).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)  # e2bq's submodules
        and name != "annotations"  # from __future__
    }
    assert public == set(e2bq.__all__) - {"__version__"}


def test_every_error_derives_from_the_root() -> None:
    errors = [getattr(e2bq, name) for name in e2bq.__all__ if name.endswith("Error")]
    assert errors
    for error in errors:
        assert issubclass(error, e2bq.E2BQError)
    assert sorted(e2bq.TERMINAL_STATES) == ["cancelled", "done", "error"]
