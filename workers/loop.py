"""One asyncio loop per worker process, in a thread of its own, where every SDK call runs.

Running the async SDK there lets a task be cancelled for real (cancelling the call closes its HTTP
stream, and the sandbox interrupts the cell) and lets tasks reuse sandbox connections. It is made
in the process that uses it — after Celery's fork — because the SDK is not fork-safe.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx
from e2b_code_interpreter import AsyncSandbox

from e2bq.config import Settings
from e2bq.errors import E2BQError, ExecutionTimeoutError

T = TypeVar("T")
_POLL = 0.05  # seconds between looks at the cancel flag
_IDLE = 600.0  # seconds a connected sandbox is kept unused before it is dropped


class SdkLoop:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self._sandboxes: dict[str, AsyncSandbox] = {}
        self._used: dict[str, float] = {}  # sandbox id -> when a task last asked for it (monotonic)
        self._pruned = time.monotonic()
        self.expiry: dict[str, float] = {}  # sandbox id -> when it expires, as last seen
        self._http: httpx.AsyncClient | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, name="e2bq-sdk", daemon=True)
        self._thread.start()

    def run(
        self,
        coro: Coroutine[Any, Any, T],
        *,
        stop: Callable[[], E2BQError | None] | None = None,
        timeout: float | None = None,
    ) -> T:
        """Run ``coro`` on the loop until done, ``stop()`` returns an error (raised), or ``timeout``."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                return future.result(timeout=_POLL)
            except concurrent.futures.TimeoutError:
                reason = stop() if stop is not None else None
                if reason is not None:
                    self._stop(future)
                    raise reason from None
                if deadline is not None and time.monotonic() > deadline:
                    self._stop(future)
                    raise ExecutionTimeoutError(f"the work did not finish within {timeout:g} s") from None

    @staticmethod
    def _stop(future: concurrent.futures.Future[Any]) -> None:
        future.cancel()
        with contextlib.suppress(BaseException):  # it was cancelled: only its end matters here
            future.result(timeout=5)

    async def sandbox(self, sandbox_id: str) -> AsyncSandbox:
        """A connected SDK sandbox, reused across tasks of this process.

        ``AsyncSandbox.connect`` asks the provider's control plane (an HTTP round trip); what it
        returns only says how to reach the sandbox (its id, domain and access token), not whether it
        lives. So keeping it cannot serve stale data: a call on a sandbox that is gone fails as it
        would after a fresh connect, and the runner then forgets it (:meth:`forget`). A sandbox
        unused for ``_IDLE`` seconds is dropped, so a long-lived worker does not keep every sandbox
        it ever served.
        """
        now = time.monotonic()
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            sandbox = await AsyncSandbox.connect(sandbox_id, **self.settings.sdk_options())
            self._sandboxes[sandbox_id] = sandbox
        self._used[sandbox_id] = now
        if now - self._pruned > _IDLE:
            self._pruned = now
            for idle, used in list(self._used.items()):
                if now - used > _IDLE:
                    self.forget(idle)
        return sandbox

    def remember(self, sandbox: AsyncSandbox) -> None:
        """Keep a sandbox connected elsewhere (a resume's connect) for the tasks that follow."""
        self._sandboxes[sandbox.sandbox_id] = sandbox
        self._used[sandbox.sandbox_id] = time.monotonic()

    def forget(self, sandbox_id: str) -> None:
        self._sandboxes.pop(sandbox_id, None)
        self._used.pop(sandbox_id, None)
        self.expiry.pop(sandbox_id, None)

    def close(self, timeout: float = 5.0) -> None:
        """Cancel what still runs on the loop, close its HTTP clients and end its thread.

        Called as the worker's process exits. The SDK's HTTP transport runs native threads that
        call back into Python when a request progresses: none may be left in flight when the
        interpreter finalizes, or the process aborts on its way out.
        """
        if not self._thread.is_alive():
            return

        async def wind_down() -> None:
            current = asyncio.current_task()
            running = [task for task in asyncio.all_tasks() if task is not current]
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            if self._http is not None:
                await self._http.aclose()
            self._sandboxes.clear()

        with contextlib.suppress(BaseException):  # leaving anyway: do what can be done in time
            asyncio.run_coroutine_threadsafe(wind_down(), self.loop).result(timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)

    @property
    def http(self) -> httpx.AsyncClient:
        """A plain HTTP client for the provider's control plane, reused (use it on the loop only)."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10)
        return self._http
