"""Every exception the agent raises on purpose, under one root.

    AgentError
    ├── ConnectError     an envd Connect call refused, with its Connect code (``not_found``,
    │                    ``invalid_argument``...): answered ``{"code": <code>, "message": ...}``, or
    │                    as a server stream's last envelope; ``paths.resolve`` raises it too
    ├── HTTPError        a plain-HTTP request refused (envd's ``/files``, the interpreter's
    │                    ``/execute`` and ``/contexts``): answered ``{"code": <status>, "message": ...}``
    ├── KernelError      a kernel could not be started, or is gone
    │   └── KernelDied   the kernel process exited while it was being waited on
    └── ContextClosed    the code context was deleted under a waiting execution

The agent is a process of its own inside the jail and imports nothing of sandboxd, so this root is
not sandboxd's (``e2bq/sandboxd/errors.py``): sandboxd sees these only as the HTTP answers above.
"""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

# The HTTP status of a Connect error, by its code (the Connect protocol's own table).
_CONNECT_HTTP_STATUS = {
    "canceled": 499,
    "unknown": 500,
    "invalid_argument": 400,
    "deadline_exceeded": 504,
    "not_found": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "resource_exhausted": 429,
    "failed_precondition": 400,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "data_loss": 500,
    "unauthenticated": 401,
}


class AgentError(Exception):
    """The root of every agent error. ``str(exc)`` is the message the caller is answered."""


class ConnectError(AgentError):
    """An error answered to the caller with a Connect code (``not_found``, ``invalid_argument``...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}

    @property
    def http_status(self) -> int:
        return _CONNECT_HTTP_STATUS.get(self.code, 500)


class HTTPError(AgentError):
    """A request refused with an HTTP status, answered as envd and E2B's interpreter do."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> Response:
        return JSONResponse({"code": self.status, "message": self.message}, status_code=self.status)


class KernelError(AgentError):
    """The kernel could not be started, or is gone."""


class KernelDied(KernelError):
    """The kernel process exited while it was being waited on."""


class ContextClosed(AgentError):
    """The context was deleted."""
