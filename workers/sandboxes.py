"""Operations on the provider's sandboxes as a whole: list them, change a sandbox's timeout."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from e2b_code_interpreter import AsyncSandbox

from e2bq.protocol import ListSandboxesArgs, SetTimeoutArgs
from e2bq.types import AccountListResult, AccountSandbox, TimeoutResult

from .operations import Context

_PAGE = 100  # sandboxes per list request


async def list_sandboxes(ctx: Context, args: ListSandboxesArgs) -> AccountListResult:
    """Every sandbox the provider runs (this worker's node's sandbox host, or E2B's cloud for the
    API key), whoever made it, every page of the listing."""
    paginator = AsyncSandbox.list(limit=_PAGE, **ctx.settings.sdk_options())
    sandboxes: list[AccountSandbox] = []
    while paginator.has_next:
        for info in await paginator.next_items():
            sandboxes.append(_listed(info, args["node"]))
    return {"status": "success", "sandboxes": sandboxes, "count": len(sandboxes)}


def _listed(info: Any, node: str | None) -> AccountSandbox:
    """The SDK's ``SandboxInfo`` as JSON."""
    state = getattr(info, "state", None)
    return {
        "sandbox_id": str(info.sandbox_id),
        "started_at": _iso(info.started_at) or "",
        "end_at": _iso(getattr(info, "end_at", None)),
        "template_id": str(info.template_id),
        "metadata": {str(k): str(v) for k, v in (info.metadata or {}).items()},
        "state": str(getattr(state, "value", state) or "running"),
        "node": node,
    }


def _iso(moment: object) -> str | None:
    return moment.isoformat() if isinstance(moment, datetime) else None


async def set_sandbox_timeout(ctx: Context, args: SetTimeoutArgs) -> TimeoutResult:
    """End the sandbox ``timeout`` seconds from now (sooner or later than it would have), and
    record its new end in the registry."""
    sandbox_id, timeout = args["sandbox_id"], args["timeout"]
    await AsyncSandbox.set_timeout(sandbox_id, timeout, **ctx.settings.sdk_options())
    expires_at = time.time() + timeout
    ctx.registry.extend(sandbox_id, expires_at)
    return {"status": "success", "sandbox_id": sandbox_id, "timeout": timeout, "expires_at": expires_at}
