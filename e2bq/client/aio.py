"""AsyncE2BToolkit and AsyncSandboxManager: the same API as coroutines, for apps on asyncio.

Each coroutine runs its synchronous twin in a thread of a pool of the client's own, so the two
share every line of logic (validation, routing, results) and cannot drift; the event loop never
blocks on Redis or on a result. Celery's client API is synchronous (``AsyncResult.get`` blocks),
which is why the wait happens in a thread rather than on the loop.

``concurrency`` bounds how many calls run at once (32 by default); more wait their turn.
Cancelling an awaiting task does not stop its call: the call runs to its end in its thread (stop
background work with ``kill_job``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Concatenate, Literal, ParamSpec, Self, TypeVar, overload

from ..config import Settings
from ..errors import InvalidInputError
from ..types import AnthropicTool, OpenAIChatTool, OpenAIResponsesTool, ToolSpec
from .manager import SandboxManager
from .toolformats import OpenAIApi
from .toolkit import E2BToolkit

P = ParamSpec("P")
R = TypeVar("R")
DEFAULT_CONCURRENCY = 32


class _Offloaded:
    """Runs synchronous calls in a thread pool of its own; closed with :meth:`aclose`."""

    def __init__(self, concurrency: int) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise InvalidInputError(f"concurrency must be a whole number >= 1, not {concurrency!r:.80}")
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="e2bq-async")

    async def _run(self, call: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, functools.partial(call, *args, **kwargs)
        )

    async def aclose(self) -> None:
        """Wait for the calls under way, then free the threads."""
        await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


def _offloaded(
    method: Callable[Concatenate[Any, P], R],
) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, R]]:
    """The coroutine twin of a synchronous method of the wrapped object (``_sync``)."""
    name = method.__name__

    async def twin(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
        sync = await self._ready()
        result: R = await self._run(getattr(sync, name), *args, **kwargs)
        return result

    # what functools.wraps does (its type hides the coroutine): the name, the docs, the signature
    twin.__name__, twin.__qualname__, twin.__doc__ = name, name, method.__doc__
    twin.__dict__["__wrapped__"] = method
    return twin


class AsyncSandboxManager(_Offloaded):
    """:class:`~e2bq.SandboxManager` as coroutines; the same arguments (no I/O at construction)."""

    def __init__(
        self,
        api_key: str | None = None,
        default_timeout: int = 300,
        default_options: dict[str, Any] | None = None,
        *,
        create_wait: float | None = None,
        settings: Settings | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self._sync = SandboxManager(
            api_key, default_timeout, default_options, create_wait=create_wait, settings=settings
        )
        super().__init__(concurrency)

    @property
    def sync(self) -> SandboxManager:
        """The synchronous manager every coroutine runs."""
        return self._sync

    async def _ready(self) -> SandboxManager:
        return self._sync

    create = _offloaded(SandboxManager.create)
    connect = _offloaded(SandboxManager.connect)
    shutdown = _offloaded(SandboxManager.shutdown)
    get_slot = _offloaded(SandboxManager.get_slot)
    list_account_sandboxes = _offloaded(SandboxManager.list_account_sandboxes)
    set_timeout = _offloaded(SandboxManager.set_timeout)
    force_shutdown = _offloaded(SandboxManager.force_shutdown)
    pause = _offloaded(SandboxManager.pause)
    resume = _offloaded(SandboxManager.resume)
    fork = _offloaded(SandboxManager.fork)
    create_snapshot = _offloaded(SandboxManager.create_snapshot)
    list_snapshots = _offloaded(SandboxManager.list_snapshots)
    delete_snapshot = _offloaded(SandboxManager.delete_snapshot)


class AsyncE2BToolkit(_Offloaded):
    """:class:`~e2bq.E2BToolkit` as coroutines: every tool, ``call`` and ``wait_job`` awaitable.

    Construction does no I/O; with ``auto_create_default`` the first awaited call makes the
    default sandbox when there is none. ``tools`` and the schemas are plain attributes.
    """

    def __init__(
        self,
        sandbox_manager: AsyncSandboxManager | SandboxManager,
        auto_create_default: bool = True,
        global_workers: int = 10,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        **kwargs: Any,
    ) -> None:
        manager = sandbox_manager
        if isinstance(manager, AsyncSandboxManager):
            manager = manager.sync
        self._sync = E2BToolkit(manager, auto_create_default=False, global_workers=global_workers, **kwargs)
        self._pending_default = auto_create_default
        self._default_lock = asyncio.Lock()
        super().__init__(concurrency)

    @property
    def sync(self) -> E2BToolkit:
        """The synchronous toolkit every coroutine runs."""
        return self._sync

    @property
    def tools(self) -> list[ToolSpec]:
        return self._sync.tools

    @overload
    def openai_tools(self, api: Literal["chat"] = ...) -> list[OpenAIChatTool]: ...
    @overload
    def openai_tools(self, api: Literal["responses"]) -> list[OpenAIResponsesTool]: ...
    def openai_tools(self, api: OpenAIApi = "chat") -> list[OpenAIChatTool] | list[OpenAIResponsesTool]:
        """As :meth:`E2BToolkit.openai_tools` (no I/O: a plain method)."""
        return self._sync.openai_tools(api) if api == "responses" else self._sync.openai_tools("chat")

    def anthropic_tools(self) -> list[AnthropicTool]:
        """As :meth:`E2BToolkit.anthropic_tools` (no I/O: a plain method)."""
        return self._sync.anthropic_tools()

    async def _ready(self) -> E2BToolkit:
        if self._pending_default:
            async with self._default_lock:
                if self._pending_default:
                    await self._run(self._sync.ensure_default)
                    self._pending_default = False
        return self._sync

    call = _offloaded(E2BToolkit.call)
    call_tool_call = _offloaded(E2BToolkit.call_tool_call)
    run_python_code = _offloaded(E2BToolkit.run_python_code)
    run_python_code_background = _offloaded(E2BToolkit.run_python_code_background)
    run_in_all_sandboxes = _offloaded(E2BToolkit.run_in_all_sandboxes)
    map_python_code = _offloaded(E2BToolkit.map_python_code)
    run_command = _offloaded(E2BToolkit.run_command)
    run_command_background = _offloaded(E2BToolkit.run_command_background)
    upload_file = _offloaded(E2BToolkit.upload_file)
    download_file_from_sandbox = _offloaded(E2BToolkit.download_file_from_sandbox)
    download_png_result = _offloaded(E2BToolkit.download_png_result)
    download_chart_data = _offloaded(E2BToolkit.download_chart_data)
    get_public_url = _offloaded(E2BToolkit.get_public_url)
    run_server = _offloaded(E2BToolkit.run_server)
    get_job_status = _offloaded(E2BToolkit.get_job_status)
    list_jobs = _offloaded(E2BToolkit.list_jobs)
    get_job_results = _offloaded(E2BToolkit.get_job_results)
    get_job_output = _offloaded(E2BToolkit.get_job_output)
    kill_job = _offloaded(E2BToolkit.kill_job)
    wait_job = _offloaded(E2BToolkit.wait_job)
    create_sandbox = _offloaded(E2BToolkit.create_sandbox)
    connect_to_sandbox = _offloaded(E2BToolkit.connect_to_sandbox)
    list_managed_sandboxes = _offloaded(E2BToolkit.list_managed_sandboxes)
    list_account_sandboxes = _offloaded(E2BToolkit.list_account_sandboxes)
    set_default_sandbox = _offloaded(E2BToolkit.set_default_sandbox)
    get_sandbox_status = _offloaded(E2BToolkit.get_sandbox_status)
    set_sandbox_timeout = _offloaded(E2BToolkit.set_sandbox_timeout)
    shutdown_sandbox = _offloaded(E2BToolkit.shutdown_sandbox)
    shutdown_all_sandboxes = _offloaded(E2BToolkit.shutdown_all_sandboxes)
    force_shutdown = _offloaded(E2BToolkit.force_shutdown)
    force_shutdown_all = _offloaded(E2BToolkit.force_shutdown_all)
    pause_sandbox = _offloaded(E2BToolkit.pause_sandbox)
    resume_sandbox = _offloaded(E2BToolkit.resume_sandbox)
    fork_sandbox = _offloaded(E2BToolkit.fork_sandbox)
    create_snapshot = _offloaded(E2BToolkit.create_snapshot)
    list_snapshots = _offloaded(E2BToolkit.list_snapshots)
    delete_snapshot = _offloaded(E2BToolkit.delete_snapshot)
