"""AsyncE2BToolkit and AsyncSandboxManager: the same methods as coroutines, on a real stack, and
the event loop free while a call waits."""

from __future__ import annotations

import asyncio
import inspect
import json

import pytest

from e2bq import AsyncE2BToolkit, AsyncSandboxManager, E2BToolkit, SandboxManager
from e2bq.client.toolkit import TOOL_NAMES
from tests.procs import WorkerProcess

GATE = "/tmp/async-gate"


def test_every_tool_is_a_coroutine_with_the_same_signature() -> None:
    for name in (*TOOL_NAMES, "call", "call_tool_call"):
        twin = getattr(AsyncE2BToolkit, name)
        assert inspect.iscoroutinefunction(twin), name
        assert inspect.signature(twin) == inspect.signature(getattr(E2BToolkit, name)), name
    for name in ("create", "connect", "shutdown", "get_slot", "list_account_sandboxes", "force_shutdown"):
        assert inspect.iscoroutinefunction(getattr(AsyncSandboxManager, name)), name


def test_construction_does_no_io_and_refuses_bad_concurrency(client_env: dict[str, str]) -> None:
    # No worker serves this module's queue yet in this test: a blocking create would hang here.
    kit = AsyncE2BToolkit(AsyncSandboxManager(), auto_create_default=True)
    assert [tool["name"] for tool in kit.tools] == list(TOOL_NAMES)
    assert kit.openai_tools() == kit.sync.openai_tools()
    assert kit.anthropic_tools() == kit.sync.anthropic_tools()
    with pytest.raises(Exception, match="concurrency"):
        AsyncE2BToolkit(SandboxManager(), concurrency=0)


async def _session(kit: AsyncE2BToolkit) -> None:
    # Several calls at once on the default sandbox (made by the first awaited call).
    outcomes = await asyncio.gather(*(kit.run_python_code(f"{i} * 2") for i in range(6)))
    assert [o["results"][0]["text"] for o in outcomes] == [str(i * 2) for i in range(6)]
    command = await kit.run_command("echo hello")
    assert command["output"]["stdout"] == "hello\n"

    # A job that ends only when a second call opens its gate: awaiting its end must leave the
    # loop free to make that call (on a blocked loop this would never end).
    job = await kit.run_command_background(f"while [ ! -e {GATE} ]; do sleep 0.02; done; echo through")
    waiting = asyncio.ensure_future(kit.wait_job(job["job_id"], timeout=120))
    await kit.run_command(f"touch {GATE}")
    record = await waiting
    assert (record["status"], record["result"]["stdout"]) == ("done", "through\n")  # type: ignore[index]

    bad = await kit.call("run_python_code", {"code": 3})
    assert bad["status"] == "error"
    json.dumps(await kit.list_managed_sandboxes())
    assert (await kit.shutdown_all_sandboxes())["status"] == "success"


def test_the_async_toolkit_on_a_real_stack(client_env: dict[str, str], queue_worker: WorkerProcess) -> None:
    async def main() -> None:
        manager = AsyncSandboxManager(default_timeout=300)
        async with AsyncE2BToolkit(manager, auto_create_default=True) as kit:
            await _session(kit)
        slot = await manager.create()
        assert (await manager.shutdown(slot.sandbox_id))["result"] is True
        await manager.aclose()

    asyncio.run(main())
