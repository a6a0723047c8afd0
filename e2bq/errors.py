"""Every exception e2bq raises, under one root.

    E2BQError
    ├── ConfigurationError       settings that cannot work (no Redis URL, no provider)
    ├── InvalidInputError        an argument the caller must change (negative timeout, bad port)
    ├── NotFoundError
    │   ├── SandboxNotFoundError a sandbox id that is unknown, killed or expired
    │   ├── JobNotFoundError     a job id with no record (get_job_status reports it as not_found)
    │   └── FileNotFoundInSandboxError / LocalFileNotFoundError
    ├── ProviderError            the sandbox provider (E2B cloud or sandboxd) failed or refused
    │   ├── SandboxPausedError   a paused sandbox a background job found (calls resume it first)
    │   ├── NodeLostError        the sandbox's node stopped beating: its host or workers are gone
    │   └── CapacityError        no room for a sandbox within the create wait (every node full, or
    │                            the provider's concurrency limit)
    ├── ExecutionTimeoutError    work that did not finish within its time bound
    ├── JobCancelledError        work stopped by kill_job
    ├── WorkerStoppedError       work a shutting-down worker could not finish in its grace period
    ├── JobTakenOverError        a job another worker took over: this one must stop driving it
    └── QueueError               Redis or the broker cannot be reached, or no worker answered

The toolkit never lets these escape: each public method turns them into
``{"status": "error", "message": str(exc)}``. Errors from the e2b SDK, redis and celery are
translated in one place each (``workers/translate.py``, ``e2bq/stores/connection.py``,
``e2bq/client/dispatch.py``) and chained.
"""

from __future__ import annotations


class E2BQError(Exception):
    """The root of every e2bq error. ``str(exc)`` tells the user what to change."""


class ConfigurationError(E2BQError):
    pass


class InvalidInputError(E2BQError):
    pass


class NotFoundError(E2BQError):
    pass


class SandboxNotFoundError(NotFoundError):
    pass


class JobNotFoundError(NotFoundError):
    pass


class FileNotFoundInSandboxError(NotFoundError):
    pass


class LocalFileNotFoundError(NotFoundError):
    pass


class ProviderError(E2BQError):
    pass


class SandboxPausedError(ProviderError):
    pass


class NodeLostError(ProviderError):
    pass


class CapacityError(ProviderError):
    pass


class ExecutionTimeoutError(E2BQError):
    pass


class JobCancelledError(E2BQError):
    pass


class WorkerStoppedError(E2BQError):
    pass


class JobTakenOverError(E2BQError):
    pass


class QueueError(E2BQError):
    pass
