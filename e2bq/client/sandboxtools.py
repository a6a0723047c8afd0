"""The sandbox tools: create, connect, list, the default sandbox, timeouts, shutdowns."""

from __future__ import annotations

from typing import Any

from ..errors import NotFoundError
from ..stores.nodes import sandbox_state
from ..types import (
    AccountListResult,
    DefaultResult,
    ErrorResult,
    ForcedShutdown,
    ForceShutdownAllResult,
    ManagedSandbox,
    SandboxListResult,
    SandboxResult,
    SandboxShutdownResult,
    SandboxStatusResult,
    ShutdownAllResult,
    ShutdownResult,
    TimeoutResult,
)
from .calls import tool
from .core import ToolkitCore
from .inputs import check_flag, check_id


class SandboxTools(ToolkitCore):
    @tool
    def create_sandbox(
        self,
        timeout: int | None = None,
        metadata: dict[str, Any] | None = None,
        set_as_default: bool = False,
        template: str | None = None,
    ) -> SandboxResult:
        """Create a sandbox; it becomes the default one (for calls without sandbox_id) with
        set_as_default, or when there is no default. template: a template or a snapshot_id from
        create_snapshot (None: the manager's default)."""
        check_flag(set_as_default, "set_as_default")
        default = set_as_default or self._live_default() is None
        slot = self.manager.create(timeout=timeout, metadata=metadata, set_default=default, template=template)
        return {"status": "success", "sandbox_id": slot.sandbox_id, "result": slot.to_dict()}

    @tool
    def connect_to_sandbox(self, sandbox_id: str, set_as_default: bool = False) -> DefaultResult:
        """Manage an existing sandbox (one made elsewhere, or by an earlier run) from now on;
        optionally make it the default."""
        check_flag(set_as_default, "set_as_default")
        slot = self.manager.connect(sandbox_id)
        if set_as_default:
            self.registry.set_default(self.manager.namespace, slot.sandbox_id)
        is_default = self._live_default() == slot.sandbox_id
        return {"status": "success", "sandbox_id": slot.sandbox_id, "is_default": is_default}

    @tool
    def set_default_sandbox(self, sandbox_id: str) -> DefaultResult:
        """Make a managed sandbox the default one, for calls without sandbox_id."""
        self.default_sandbox_id = sandbox_id
        return {"status": "success", "sandbox_id": sandbox_id, "is_default": True}

    @tool
    def list_managed_sandboxes(self) -> SandboxListResult:
        """Every sandbox this manager's namespace manages, with metadata, expiry, its node, its
        state (``paused``, or ``lost`` once its node is, or its node's sandbox host restarted), whether it is
        the default and whether a background job runs in it."""
        entries = self.registry.list(self.manager.namespace)
        nodes = {node["node"]: node for node in self.manager.nodes.list()}
        busy = self.jobs.busy_sandboxes() if entries else set()
        listed: list[ManagedSandbox] = []
        for entry in entries:
            entry["state"] = sandbox_state(entry, nodes.get(entry.get("node") or ""))
            listed.append({**entry, "has_jobs": entry["sandbox_id"] in busy})
        default = self._live_default()
        return {"status": "success", "sandboxes": listed, "count": len(listed), "default_sandbox_id": default}

    @tool
    def list_account_sandboxes(self) -> AccountListResult:
        """Every sandbox the provider runs, whoever made it (each node's sandbox host, or E2B's
        cloud for the API key); managed says whether this namespace manages it."""
        sandboxes = self.manager.list_account_sandboxes()
        managed = {entry["sandbox_id"] for entry in self.registry.list(self.manager.namespace)}
        for sandbox in sandboxes:
            sandbox["managed"] = sandbox["sandbox_id"] in managed
        return {"status": "success", "sandboxes": sandboxes, "count": len(sandboxes)}

    @tool
    def get_sandbox_status(self, sandbox_id: str | None = None) -> SandboxStatusResult:
        """A managed sandbox's metadata, state (running, paused or lost), expiry and node (the
        default one without sandbox_id)."""
        sid = self._default_or(sandbox_id)
        entry = self.registry.get(sid)
        if entry is None:
            raise NotFoundError(f"sandbox {sid} is not managed here (unknown, shut down or expired)")
        node = next((n for n in self.manager.nodes.list() if n["node"] == entry.get("node")), None)
        return {
            "status": "success",
            "sandbox_id": sid,
            "metadata": entry["metadata"],
            "state": sandbox_state(entry, node),
            "is_default": entry["is_default"],
            "has_jobs": sid in self.jobs.busy_sandboxes(),
            "created_at": entry["created_at"],
            "expires_at": entry["expires_at"],
            "node": entry.get("node"),
            "paused_at": entry.get("paused_at"),
        }

    @tool
    def set_sandbox_timeout(self, timeout: int, sandbox_id: str | None = None) -> TimeoutResult | ErrorResult:
        """End a sandbox timeout seconds from now (the default one without sandbox_id), sooner or
        later than it would have ended."""
        target = self._target(sandbox_id)
        return target.noted(self.manager.set_timeout(target.sandbox_id, timeout))

    def _after_shutdown(self, sandbox_id: str) -> str | None:
        """The default sandbox once ``sandbox_id`` is gone: when it was the default, the oldest
        other managed sandbox takes its place (none when there is no other)."""
        if self.registry.default(self.manager.namespace) in (None, sandbox_id):
            remaining = [e["sandbox_id"] for e in self.registry.list(self.manager.namespace)]
            following = next((sid for sid in remaining if sid != sandbox_id), None)
            if following is None:
                self.registry.clear_default(self.manager.namespace)
            else:
                self.registry.set_default(self.manager.namespace, following)
        return self._live_default()

    @tool
    def shutdown_sandbox(self, sandbox_id: str | None = None) -> SandboxShutdownResult:
        """Kill a sandbox (the default one if sandbox_id is None); when it was the default, another
        managed sandbox becomes the default. result nests the manager's shutdown result; killed
        says whether it was running."""
        sid = self._default_or(sandbox_id)
        was_default = self.registry.default(self.manager.namespace) == sid
        outcome = self.manager.shutdown(sid)
        result: SandboxShutdownResult = {
            "status": outcome["status"],
            "sandbox_id": sid,
            "result": outcome,
            "killed": outcome["result"],
            "default_sandbox_id": self._after_shutdown(sid) if was_default else self._live_default(),
        }
        if "message" in outcome:
            result["message"] = outcome["message"]
        return result

    @tool
    def shutdown_all_sandboxes(self) -> ShutdownAllResult:
        """Kill every managed sandbox; a result per sandbox id (under both result and results)."""
        ids = [entry["sandbox_id"] for entry in self.registry.list(self.manager.namespace)]
        outcome = dict(zip(ids, self._each(self.manager.shutdown, ids), strict=True))
        self.registry.clear_default(self.manager.namespace)
        return {"status": "success", "result": outcome, "results": outcome}

    @tool
    def force_shutdown(self, sandbox_id: str) -> ShutdownResult:
        """Kill a sandbox by id whether or not it is managed here (one made elsewhere, or left by
        an earlier run)."""
        check_id(sandbox_id, "sandbox_id")
        was_default = self.registry.default(self.manager.namespace) == sandbox_id
        outcome = self.manager.force_shutdown(sandbox_id)
        if was_default:
            self._after_shutdown(sandbox_id)
        return outcome

    @tool
    def force_shutdown_all(self) -> ForceShutdownAllResult:
        """Kill every sandbox the provider runs, whoever made it (every node's, or every one of
        E2B's cloud for the API key). Careful: other applications' sandboxes too."""
        listed = self.manager.list_account_sandboxes()

        def kill(sandbox_id: str) -> ForcedShutdown:
            outcome = self.manager.force_shutdown(sandbox_id)
            if outcome["status"] == "success":
                return {"status": "killed", "sandbox_id": sandbox_id, "result": outcome["result"]}
            failed = outcome.get("message", "")
            return {"status": "error", "sandbox_id": sandbox_id, "result": None, "message": failed}

        ids = [sandbox["sandbox_id"] for sandbox in listed]
        outcome = dict(zip(ids, self._each(kill, ids), strict=True))
        self._after_shutdown("")
        return {"status": "success", "results": outcome, "result": outcome}
