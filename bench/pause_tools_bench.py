"""The queue's pause tools: what a pause, a resume and a call that resumes cost through the queue,
each beside a plain ``run_python_code`` on a running sandbox in the same run.

Against the embedded default (private Redis, sandboxd, one threads-pool worker):
- ``run_python_code("1 + 1")`` on a running sandbox (the baseline);
- ``pause_sandbox`` and ``resume_sandbox`` round trips;
- ``run_python_code`` on a sandbox paused through e2bq (the worker resumes it first), and on one
  paused with the SDK over the worker's kept connection (refused, resumed, made again);
- the registry look a call now makes before it runs (one HGET);
- ``fork_sandbox(count=10)`` wall time, when the sandbox host serves fork.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from common import header, row, summary, toolkit_stack
from e2b_code_interpreter import Sandbox

CODE = "1 + 1"


def timed(call: Callable[[], object], n: int, before: Callable[[], object] | None = None) -> list[float]:
    samples = []
    for _ in range(n):
        if before is not None:
            before()
        start = time.perf_counter()
        result = call()
        samples.append(time.perf_counter() - start)
        assert isinstance(result, dict) and result["status"] == "success", result
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    with toolkit_stack() as (_stack, toolkit, sid):
        header("pause tools through the queue")
        options = toolkit.settings.sdk_options()
        toolkit.run_python_code(CODE)
        running = timed(lambda: toolkit.run_python_code(CODE), args.calls)
        row("run_python_code, running sandbox", summary(running))
        pauses = timed(toolkit.pause_sandbox, args.calls, before=lambda: toolkit.resume_sandbox())
        row("pause_sandbox", summary(pauses), f"baseline: {summary(running)}")
        resumes = timed(toolkit.resume_sandbox, args.calls, before=toolkit.pause_sandbox)
        row("resume_sandbox", summary(resumes), f"baseline: {summary(running)}")
        paused = timed(lambda: toolkit.run_python_code(CODE), args.calls, before=toolkit.pause_sandbox)
        row("run_python_code, paused through e2bq", summary(paused), f"baseline: {summary(running)}")
        by_sdk = timed(
            lambda: toolkit.run_python_code(CODE), args.calls, before=lambda: Sandbox.pause(sid, **options)
        )
        row("run_python_code, paused with the SDK", summary(by_sdk), f"baseline: {summary(running)}")
        looks = timed(lambda: {"status": "success", "p": toolkit.registry.is_paused(sid)}, 1000)
        row("registry look before each call (HGET)", summary(looks), f"baseline: {summary(running)}")
        start = time.perf_counter()
        forked = toolkit.fork_sandbox(count=10)
        took = time.perf_counter() - start
        made = forked.get("count", 0) if forked["status"] == "success" else forked.get("message", "")
        row("fork_sandbox(count=10)", f"{took * 1000:.0f} ms", f"made: {made}")


if __name__ == "__main__":
    main()
