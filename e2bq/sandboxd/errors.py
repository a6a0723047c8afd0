"""Every exception sandboxd raises on purpose, under one root.

    SandboxdError
    ├── HostError      a request the host refuses, with the HTTP status to answer: the control
    │                  plane answers it as E2B does, ``{"code": <status>, "message": ...}``
    ├── LaunchError    a jail did not start (a create answers 500; the warm pool tries again later)
    │   └── ForkServerError  the fork server did not fork an agent or kernel into a jail (sandboxd falls
    │                        back to starting the process itself)
    ├── SetupError     this host cannot run sandboxes as configured: no sandbox runtime, no
    │                  bubblewrap, no system Python, a state folder the sandboxes' uid cannot reach
    └── TemplateError  a template definition that does not parse or validate, a build step that
                       failed, a template that does not exist (``templates/``)

The in-jail agent is another process with a root of its own (``agent/errors.py``): nothing it raises
crosses into sandboxd, which sees only its HTTP answers. Invalid limits and settings raise
``ValueError`` where they are parsed; the control plane turns a request's into ``HostError(400)``.
"""

from __future__ import annotations


class SandboxdError(Exception):
    """The root of every sandboxd error. ``str(exc)`` says what went wrong and what to change."""


class HostError(SandboxdError):
    """A request the host refuses; ``status`` is the HTTP status its answer carries."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class LaunchError(SandboxdError):
    """A jail did not start: it timed out, or it died before its agent was up."""


class ForkServerError(LaunchError):
    """The fork server could not fork a kernel or an agent into a jail."""


class SetupError(SandboxdError):
    """Something this host lacks or its settings get wrong; sandboxd cannot start sandboxes."""


class TemplateError(SandboxdError):
    """A template file that is invalid, a build that failed, or a template name that is unknown."""
