"""SandboxManager and SandboxSlot: sandbox lifecycles, carried out by the workers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import Settings
from ..errors import E2BQError, InvalidInputError, ProviderError
from ..protocol import (
    CONNECT_SANDBOX,
    CREATE_SANDBOX,
    KILL_SANDBOX,
    ConnectSandboxArgs,
    CreateSandboxArgs,
    KillSandboxArgs,
)
from ..stores.registry import Registry
from ..types import ErrorResult, SandboxEntry, SandboxEntryResult, ShutdownResult, SlotInfo
from .dispatch import Dispatcher


def check_timeout(value: Any, name: str = "timeout") -> None:
    """InvalidInputError unless ``value`` is None or a positive number of seconds."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise InvalidInputError(f"{name} must be a positive number of seconds, not {value!r}")


@dataclass
class SandboxSlot:
    """A managed sandbox: its id and metadata, as the registry keeps them.

    ``sandbox`` connects the e2b SDK to it on first use — only where this process can reach the
    provider itself; nothing else in e2bq needs that.
    """

    sandbox_id: str
    metadata: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    expires_at: float = 0.0
    provider: str = ""
    settings: Settings | None = field(default=None, repr=False)
    _sandbox: Any = field(default=None, repr=False)

    @classmethod
    def from_entry(cls, entry: SandboxEntry, settings: Settings) -> SandboxSlot:
        return cls(
            sandbox_id=entry["sandbox_id"],
            metadata=dict(entry["metadata"]),
            created_at=entry["created_at"],
            expires_at=entry["expires_at"],
            provider=entry["provider"],
            settings=settings,
        )

    @property
    def sandbox(self) -> Any:
        if self._sandbox is None:
            from e2b_code_interpreter import Sandbox

            options = self.settings.sdk_options() if self.settings else {}
            self._sandbox = Sandbox.connect(self.sandbox_id, **options)
        return self._sandbox

    def to_dict(self) -> SlotInfo:
        return {
            "sandbox_id": self.sandbox_id,
            "metadata": self.metadata,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "provider": self.provider,
        }


class SandboxManager:
    """Creates, connects and shuts down sandboxes through the queue.

    ``api_key`` falls back to ``E2B_API_KEY``. The workers hold the provider's credentials and make
    the sandboxes; this key is used only where this process itself connects to a sandbox
    (``SandboxSlot.sandbox``), so it never travels through the broker.
    """

    def __init__(
        self,
        api_key: str | None = None,
        default_timeout: int = 300,
        default_options: dict[str, Any] | None = None,
        *,
        settings: Settings | None = None,
    ) -> None:
        check_timeout(default_timeout, "default_timeout")
        self.settings = (settings or Settings.from_env()).with_api_key(api_key)
        self.api_key = self.settings.e2b_api_key
        self.default_timeout = int(default_timeout)
        self.default_options = dict(default_options or {})
        self.namespace = self.settings.namespace
        self.dispatcher = Dispatcher(self.settings)
        self.registry = Registry(self.settings)

    def create(
        self, timeout: int | None = None, metadata: dict[str, Any] | None = None, *, set_default: bool = False
    ) -> SandboxSlot:
        """Create a sandbox that lives ``timeout`` seconds (``default_timeout`` if None)."""
        check_timeout(timeout)
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidInputError("metadata must be a dict of strings")
        args = CreateSandboxArgs(
            timeout=int(timeout or self.default_timeout),
            metadata={str(k): str(v) for k, v in (metadata or {}).items()},
            namespace=self.namespace,
            set_default=set_default,
            options=self.default_options,
        )
        return self._slot(self.dispatcher.call(CREATE_SANDBOX, args))

    def connect(self, sandbox_id: str) -> SandboxSlot:
        """A slot for an existing sandbox (adopted into this manager's registry if new to it)."""
        if not isinstance(sandbox_id, str) or not sandbox_id:
            raise InvalidInputError("sandbox_id must be a non-empty string")
        args = ConnectSandboxArgs(sandbox_id=sandbox_id, namespace=self.namespace)
        return self._slot(self.dispatcher.call(CONNECT_SANDBOX, args))

    def shutdown(self, sandbox_id: str) -> ShutdownResult:
        """Kill a sandbox: ``{"status", "sandbox_id", "result"}`` (result: whether it was running)."""
        try:
            if not isinstance(sandbox_id, str) or not sandbox_id:
                raise InvalidInputError("sandbox_id must be a non-empty string")
            result = self.dispatcher.call(KILL_SANDBOX, KillSandboxArgs(sandbox_id=sandbox_id))
        except E2BQError as exc:
            return {"status": "error", "sandbox_id": sandbox_id, "result": None, "message": str(exc)}
        if result["status"] == "success":
            return result
        failed: ShutdownResult = {
            "status": "error", "sandbox_id": sandbox_id, "result": None, "message": result["message"]
        }
        if "error_type" in result:
            failed["error_type"] = result["error_type"]
        return failed

    def _slot(self, result: SandboxEntryResult | ErrorResult) -> SandboxSlot:
        if result["status"] != "success":
            raise ProviderError(result["message"])
        return SandboxSlot.from_entry(result["result"], self.settings)
