"""The ways in besides plain method calls: a model's tool call, the asyncio client, the MCP server
and the command line, each beside a plain toolkit call and a Celery no-op round trip in the same run.

Against the embedded default (private Redis, sandboxd, one threads-pool worker):
- ``toolkit.call`` with a JSON string, as a model sends it (parsed and checked by pydantic), beside
  the same ``run_python_code`` called directly;
- the asyncio client: 20 ``run_command("sleep 0.2")`` calls awaited together, beside the same 20
  made one after another by the synchronous toolkit (a sandbox runs commands side by side, where
  its kernel runs code cells one at a time);
- ``e2bq mcp`` over stdio: a ``tools/call`` from the SDK's client session, and a job's end until the
  subscribed client hears of it;
- ``e2bq run '1 + 1'`` as a new process, beside ``python -c pass`` (fork-exec and interpreter start).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

from common import header, row, summary, toolkit_stack

CODE = "1 + 1"
SLEEP = "sleep 0.2"


def timed(call: Callable[[], object], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=60)
    parser.add_argument("--processes", type=int, default=8)
    args = parser.parse_args()
    with toolkit_stack() as (stack, toolkit, _sid):
        header("ways in: tool calls, asyncio, MCP, the command line")
        queue = os.environ.get("E2BQ_QUEUE", "e2bq")
        app = toolkit.dispatcher.app
        noop = timed(
            lambda: app.send_task("celery.accumulate", args=(1,), queue=queue).get(timeout=60), args.calls
        )
        toolkit.run_python_code(CODE)
        direct = timed(lambda: toolkit.run_python_code(CODE), args.calls)
        called = timed(lambda: toolkit.call("run_python_code", json.dumps({"code": CODE})), args.calls)
        row("Celery no-op round trip", summary(noop))
        row("run_python_code, called directly", summary(direct), "")
        row("toolkit.call('run_python_code', JSON string)", summary(called), f"direct: {summary(direct)}")

        sequential, together = _asyncio(toolkit)
        row(
            "20 run_command('sleep 0.2') awaited together (AsyncE2BToolkit)",
            f"{together * 1000:.0f} ms",
            f"20 one after another (E2BToolkit): {sequential * 1000:.0f} ms",
        )

        tool_calls, notified = asyncio.run(_mcp(args.calls))
        row("MCP stdio tools/call run_python_code", summary(tool_calls), f"direct: {summary(direct)}")
        row("job end → resources/updated at the MCP client", summary(notified))

        cli = timed(lambda: _run([sys.executable, "-m", "e2bq.cli", "run", CODE]), args.processes)
        bare = timed(lambda: _run([sys.executable, "-c", "pass"]), args.processes)
        row("`e2bq run '1 + 1'`, a new process", summary(cli), f"python -c pass: {summary(bare)}")
        del stack


def _asyncio(toolkit: object) -> tuple[float, float]:
    from e2bq import AsyncE2BToolkit, E2BToolkit

    assert isinstance(toolkit, E2BToolkit)
    start = time.perf_counter()
    for _ in range(20):
        toolkit.run_command(SLEEP)
    sequential = time.perf_counter() - start

    async def together() -> float:
        async with AsyncE2BToolkit(toolkit.manager, auto_create_default=False) as kit:
            await kit.run_command(SLEEP)
            began = time.perf_counter()
            outcomes = await asyncio.gather(*(kit.run_command(SLEEP) for _ in range(20)))
            assert all(outcome["status"] == "success" for outcome in outcomes)
            return time.perf_counter() - began

    return sequential, asyncio.run(together())


async def _mcp(n: int) -> tuple[list[float], list[float]]:
    import mcp_types as types
    from mcp import ClientSession, StdioServerParameters, stdio_client

    heard: dict[str, float] = {}

    async def on_message(message: object) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            heard[str(message.params.uri)] = time.time()

    params = StdioServerParameters(
        command=sys.executable, args=["-m", "e2bq.cli", "mcp", "--no-default-sandbox"], env=dict(os.environ)
    )
    with open(os.devnull, "w") as quiet:
        async with stdio_client(params, errlog=quiet) as (read, write), ClientSession(
            read, write, message_handler=on_message
        ) as session:
            await session.initialize()
            made = (await session.call_tool("create_sandbox", {"set_as_default": True})).structured_content
            assert made and made["status"] == "success", made
            await session.call_tool("run_python_code", {"code": CODE})
            calls = []
            for _ in range(n):
                start = time.perf_counter()
                result = await session.call_tool("run_python_code", {"code": CODE})
                calls.append(time.perf_counter() - start)
                assert not result.is_error, result
            notified = []
            for _ in range(10):
                sent = await session.call_tool("run_command_background", {"command": "true"})
                accepted = sent.structured_content
                assert accepted is not None
                uri = accepted["resource_uri"]
                await session.subscribe_resource(uri)
                deadline = time.monotonic() + 30
                while uri not in heard and time.monotonic() < deadline:
                    await asyncio.sleep(0.001)
                [content] = (await session.read_resource(uri)).contents
                notified.append(heard[uri] - json.loads(content.text)["finished_at"])  # type: ignore[union-attr]
    return calls, notified


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{command} exited {done.returncode}: {done.stderr[-2000:]}")


if __name__ == "__main__":
    main()
