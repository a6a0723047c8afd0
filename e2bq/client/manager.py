"""SandboxManager and SandboxSlot: sandbox lifecycles, carried out by the workers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from ..config import Settings
from ..errors import (
    CapacityError,
    E2BQError,
    InvalidInputError,
    NodeLostError,
    ProviderError,
    SandboxNotFoundError,
)
from ..protocol import (
    CONNECT_SANDBOX,
    CREATE_SANDBOX,
    KILL_SANDBOX,
    LIST_SANDBOXES,
    SET_SANDBOX_TIMEOUT,
    ConnectSandboxArgs,
    CreateSandboxArgs,
    KillSandboxArgs,
    ListSandboxesArgs,
    PlacementArgs,
    SetTimeoutArgs,
)
from ..stores.nodes import NodeStore, Placement
from ..stores.registry import Registry
from ..stores.snapshots import SnapshotStore
from ..types import (
    AccountSandbox,
    ErrorResult,
    NodeInfo,
    SandboxEntry,
    SandboxEntryResult,
    ShutdownResult,
    SlotInfo,
    TimeoutResult,
)
from .dispatch import Dispatcher
from .inputs import check_flag, check_id, check_metadata, check_options, check_text, check_timeout
from .lifecycle import LifecycleCalls
from .routing import Route, Router

_PLACE_RETRY = 0.2  # seconds between looks for a free slot when every node is full


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
    node: str | None = None
    node_url: str | None = None
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
            node=entry.get("node"),
            node_url=entry.get("node_url"),
            settings=settings,
        )

    @property
    def sandbox(self) -> Any:
        if self._sandbox is None:
            from e2b_code_interpreter import Sandbox

            options = self.settings.sdk_options() if self.settings else {}
            if self.node_url:  # the sandbox host of its node, as this machine reaches it
                options.update(api_url=self.node_url, sandbox_url=self.node_url)
            try:
                self._sandbox = Sandbox.connect(self.sandbox_id, **options)
            except Exception as exc:  # the SDK's own exceptions (four roots), or its HTTP client's
                raise _connect_error(self.sandbox_id, exc) from exc
        return self._sandbox

    def to_dict(self) -> SlotInfo:
        return {
            "sandbox_id": self.sandbox_id,
            "metadata": self.metadata,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "provider": self.provider,
            "node": self.node,
        }


def _connect_error(sandbox_id: str, exc: Exception) -> E2BQError:
    """What a failed ``Sandbox.connect`` from this process means, as an e2bq error."""
    from e2b.exceptions import NotFoundException, SandboxNotFoundException

    if isinstance(exc, SandboxNotFoundException | NotFoundException):
        return SandboxNotFoundError(f"no sandbox {sandbox_id!r:.80} is running: check the id, or create one")
    return ProviderError(f"cannot connect to sandbox {sandbox_id!r:.80}: {type(exc).__name__}: {exc}")


def _load(node: NodeInfo) -> str:
    if node["state"] == "lost":
        return f"{node['node']} lost"
    return f"{node['node']} {node['live']}/{node['capacity']} live"


class SandboxManager(LifecycleCalls):
    """Creates, connects and shuts down sandboxes through the queue.

    ``api_key`` falls back to ``E2B_API_KEY``. The workers hold the provider's credentials and make
    the sandboxes; this key is used only where this process itself connects to a sandbox
    (``SandboxSlot.sandbox``), so it never travels through the broker.

    On a cluster of local nodes a create lands on the live node with the most free slots. When
    every node (or E2B's cloud's concurrency limit) is full, it waits for a free slot up to
    ``create_wait`` seconds (``E2BQ_CREATE_WAIT``, 120), then fails saying so.
    """

    def __init__(
        self,
        api_key: str | None = None,
        default_timeout: int = 300,
        default_options: dict[str, Any] | None = None,
        *,
        create_wait: float | None = None,
        settings: Settings | None = None,
    ) -> None:
        check_timeout(default_timeout, "default_timeout")
        if create_wait is not None and (
            isinstance(create_wait, bool) or not isinstance(create_wait, int | float) or create_wait < 0
        ):
            raise InvalidInputError(f"create_wait must be a number of seconds >= 0, not {create_wait!r}")
        if api_key is not None:
            check_text(api_key, "api_key")
        options = check_options(default_options)
        settings = (settings or Settings.from_env()).with_api_key(api_key)
        self.settings = settings if create_wait is None else replace(settings, create_wait=float(create_wait))
        self.api_key = self.settings.e2b_api_key
        self.default_timeout = int(default_timeout)
        self.default_options = options
        self.namespace = self.settings.namespace
        self.registry = Registry(self.settings)
        self.nodes = NodeStore(self.settings, self.registry.redis)
        self.router = Router(self.settings, self.registry, self.nodes)
        self.dispatcher = Dispatcher(self.settings, router=self.router)
        self.snapshots = SnapshotStore(self.settings, self.registry.redis)

    def create(
        self,
        timeout: int | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        set_default: bool = False,
        template: str | None = None,
    ) -> SandboxSlot:
        """Create a sandbox that lives ``timeout`` seconds (``default_timeout`` if None), from
        ``template`` (a template, or a snapshot's id; None: ``default_options``' or the host's).

        On a cluster of nodes, a create whose node is lost before it is made is placed again on a
        live node (within ``create_wait``); one from a snapshot taken through e2bq goes to the
        node that keeps the snapshot. ProviderError when it cannot be made."""
        check_timeout(timeout)
        check_flag(set_default, "set_default")
        options = self.default_options
        if template is not None:
            options = {**options, "template": check_text(template, "template")}
        args = CreateSandboxArgs(
            timeout=int(timeout or self.default_timeout),
            metadata=check_metadata(metadata),
            namespace=self.namespace,
            set_default=set_default,
            options=options,
            create_wait=self.settings.create_wait,
        )
        if not self.nodes.any():  # E2B's cloud: any worker makes it, within the shared shaping
            return self._slot(self.dispatcher.call(CREATE_SANDBOX, args))
        snapshot = self.snapshots.get(template) if template is not None else None
        only = snapshot["node"] if snapshot is not None else None
        until = time.monotonic() + self.settings.create_wait
        while True:
            placement = self._place(until, only)
            args["placement"] = PlacementArgs(node=placement.node, reservation=placement.reservation)
            try:
                route = self.router.to_node(placement.node)
                return self._slot(self.dispatcher.call(CREATE_SANDBOX, args, route=route))
            except NodeLostError:
                # Its node was lost before the sandbox was made: free the slot reserved there and
                # place the create again (a lost node is placed on no more).
                self.nodes.settle(placement, made=False)
                if time.monotonic() >= until:
                    raise

    def _place(self, until: float, node: str | None = None) -> Placement:
        """A free slot on the least loaded live node (or on ``node`` only), waiting until
        ``until`` (monotonic) for one."""
        while (placement := self.nodes.place(node)) is None:
            if time.monotonic() >= until:
                states = ", ".join(_load(node) for node in self.nodes.list())
                raise CapacityError(
                    f"no node had a free sandbox slot within {self.settings.create_wait:g} s ({states}): "
                    "kill sandboxes you no longer need, add a node, raise E2BQ_SANDBOXD_MAX_SANDBOXES, "
                    "or wait longer (create_wait / E2BQ_CREATE_WAIT)"
                )
            time.sleep(_PLACE_RETRY)
        return placement

    def connect(self, sandbox_id: str) -> SandboxSlot:
        """A slot for an existing sandbox (adopted into this manager's registry if new to it).

        A sandbox the registry does not know is looked for on every live node in turn."""
        check_id(sandbox_id, "sandbox_id")
        args = ConnectSandboxArgs(sandbox_id=sandbox_id, namespace=self.namespace)
        if self.registry.get(sandbox_id) is not None or not self.nodes.any():
            return self._slot(self.dispatcher.call(CONNECT_SANDBOX, args))
        result: SandboxEntryResult | ErrorResult = {"status": "error", "message": "no live node"}
        for node in self.nodes.list():
            if node["state"] == "live":
                result = self.dispatcher.call(CONNECT_SANDBOX, args, route=self.router.to_node(node["node"]))
                if result["status"] == "success" or result.get("error_type") != "SandboxNotFoundError":
                    break
        return self._slot(result)

    def get_slot(self, sandbox_id: str | None = None) -> SandboxSlot:
        """The slot of a managed sandbox; with no id, the namespace's default sandbox, else its
        oldest. SandboxNotFoundError when there is none (agno's E2BTools raised KeyError)."""
        if sandbox_id is not None:
            entry = self.registry.get(check_id(sandbox_id, "sandbox_id"))
            if entry is None:
                raise SandboxNotFoundError(
                    f"sandbox {sandbox_id} is not managed here (unknown, shut down or expired): "
                    "connect to it first"
                )
            return SandboxSlot.from_entry(entry, self.settings)
        default = self.registry.default(self.namespace)
        entry = self.registry.get(default) if default else None
        if entry is None:
            entries = self.registry.list(self.namespace)
            if not entries:
                raise SandboxNotFoundError("no sandbox is managed here: create one first")
            entry = entries[0]
        return SandboxSlot.from_entry(entry, self.settings)

    def list_account_sandboxes(self) -> list[AccountSandbox]:
        """Every sandbox the provider runs, whoever made it: each live node's sandbox host's, or
        E2B's cloud's for the API key. ProviderError when a listing fails."""
        if not self.nodes.any():
            return self._listing(None)
        live = [node["node"] for node in self.nodes.list() if node["state"] == "live"]
        return [sandbox for node in live for sandbox in self._listing(node)]

    def _listing(self, node: str | None) -> list[AccountSandbox]:
        route = self.router.to_node(node)
        listed = self.dispatcher.call(LIST_SANDBOXES, ListSandboxesArgs(node=node), route=route)
        if listed["status"] != "success":
            raise ProviderError(f"cannot list the sandboxes of {node or 'the provider'}: {listed['message']}")
        return listed["sandboxes"]

    def set_timeout(self, sandbox_id: str, timeout: int) -> TimeoutResult | ErrorResult:
        """End a sandbox ``timeout`` seconds from now, sooner or later than it would have ended."""
        check_id(sandbox_id, "sandbox_id")
        check_timeout(timeout)
        args = SetTimeoutArgs(sandbox_id=sandbox_id, timeout=int(timeout))
        return self.dispatcher.call(SET_SANDBOX_TIMEOUT, args)

    def force_shutdown(self, sandbox_id: str) -> ShutdownResult:
        """Kill a sandbox whether or not it is managed here; one the registry does not know is
        looked for on every live node in turn."""
        known = isinstance(sandbox_id, str) and self.registry.get(sandbox_id) is not None
        if known or not isinstance(sandbox_id, str) or not self.nodes.any():
            return self.shutdown(sandbox_id)
        result: ShutdownResult = {
            "status": "success", "sandbox_id": sandbox_id, "result": False, "message": "no live node runs it"
        }
        for node in self.nodes.list():
            if node["state"] == "live":
                result = self._kill(sandbox_id, self.router.to_node(node["node"]))
                if result["status"] != "success" or result["result"]:
                    break
        return result

    def shutdown(self, sandbox_id: str) -> ShutdownResult:
        """Kill a sandbox: ``{"status", "sandbox_id", "result"}`` (result: whether it was running)."""
        return self._kill(sandbox_id, None)

    def _kill(self, sandbox_id: str, route: Route | None) -> ShutdownResult:
        """Kill a sandbox through ``route`` (None: its node's queue, see :meth:`Router.route`)."""
        try:
            check_id(sandbox_id, "sandbox_id")
            result = self.dispatcher.call(KILL_SANDBOX, KillSandboxArgs(sandbox_id=sandbox_id), route=route)
        except NodeLostError as exc:  # nothing left to kill: forget it
            self.registry.remove(sandbox_id, shut_down=True)
            return {"status": "success", "sandbox_id": sandbox_id, "result": False, "message": str(exc)}
        except E2BQError as exc:  # sandbox_id may be no string at all: name it JSON-safely
            named = sandbox_id if isinstance(sandbox_id, str) else repr(sandbox_id)
            return {"status": "error", "sandbox_id": named, "result": None, "message": str(exc)}
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
