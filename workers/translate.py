"""The e2b SDK's exceptions (four unrelated roots) as e2bq errors, in this one place."""

from __future__ import annotations

from e2b.exceptions import (
    AuthenticationException,
    FileNotFoundException,
    InvalidArgumentException,
    NotEnoughSpaceException,
    NotFoundException,
    RateLimitException,
    SandboxException,
    SandboxNotFoundException,
    SandboxNotRunningException,
    TimeoutException,
)

from e2bq.errors import (
    ConfigurationError,
    E2BQError,
    ExecutionTimeoutError,
    FileNotFoundInSandboxError,
    InvalidInputError,
    ProviderError,
    SandboxNotFoundError,
    SandboxPausedError,
)

_GONE = "was not found"  # what E2B's proxy (and sandboxd) answer for a sandbox that is not running
_PAUSED = "it is paused"  # sandboxd's addition to that answer when the sandbox is paused, not gone
_KILLED = "sandbox was killed"  # the code interpreter's word for a stream the sandbox's end cut off


def translate(exc: BaseException, sandbox_id: str | None = None) -> E2BQError:
    """The e2bq error for an SDK exception, with a message that says what to change."""
    where = f"sandbox {sandbox_id}" if sandbox_id else "the sandbox"
    if isinstance(exc, E2BQError):
        return exc
    if _PAUSED in str(exc):  # still there, memory and all: the registry keeps it
        how = f"resume_sandbox({sandbox_id!r})" if sandbox_id else "resume_sandbox"
        return SandboxPausedError(f"{where} is paused; {how} first (or the SDK's Sandbox.connect)")
    if isinstance(exc, SandboxNotRunningException | SandboxNotFoundException) or (
        # The code interpreter reports the proxy's 502 "The sandbox <id> was not found" as a timeout,
        # and so a sandbox that died while a cell ran ("The sandbox was killed while ...").
        isinstance(exc, TimeoutException) and (_GONE in str(exc) or _KILLED in str(exc))
    ):
        return SandboxNotFoundError(
            f"{where} is not running (it was killed or its timeout passed): create a new one"
        )
    if isinstance(exc, FileNotFoundException):
        return FileNotFoundInSandboxError(f"no such file in {where}: {exc}")
    if isinstance(exc, NotFoundException):
        return SandboxNotFoundError(f"not found in {where}: {exc}")
    if isinstance(exc, AuthenticationException):
        return ConfigurationError(f"the sandbox provider refused the API key: {exc}")
    if isinstance(exc, RateLimitException):
        return ProviderError(f"the sandbox provider's rate limit was hit, retry later: {exc}")
    if isinstance(exc, NotEnoughSpaceException):
        return ProviderError(f"{where} is out of disk space: {exc}")
    if isinstance(exc, InvalidArgumentException):
        return InvalidInputError(str(exc))
    if isinstance(exc, TimeoutException):
        return ExecutionTimeoutError(f"{where} did not answer in time: {exc}")
    if isinstance(exc, SandboxException):
        return ProviderError(f"{where}: {exc}")
    return ProviderError(f"{where}: {type(exc).__name__}: {exc}")
