"""A cluster of two nodes on this machine: interactive calls under a backlog, fan-out per node.

Runs against ``embedded(nodes=2, batch_workers=1)`` (private Redis; two sandboxd, each with an
interactive and a batch worker), all measured in this run:
- run_python_code("1+1") p50 while thousands of background jobs wait in the queue, vs its idle p50;
- placement: where ten creates land over two equal nodes;
- fan-out of time.sleep(1) over N sandboxes spread over both nodes, wall time, vs the 1 s floor
  and one sandbox's own time.sleep(1) through the SDK.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import time

from common import header, ms, pct, row, summary

from e2bq.embedded import Stack, embedded
from e2bq.types import SlotInfo


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--backlog", type=int, default=2000)
    parser.add_argument("--fanout", type=int, default=100)
    args = parser.parse_args()

    # Each node: an interactive worker and a batch worker (e2bq.queues), the recommended layout.
    with embedded(nodes=2, batch_workers=1, warm_pool=4) as stack:
        os.environ.update({"E2BQ_REDIS_URL": stack.env["E2BQ_REDIS_URL"]})
        from e2b_code_interpreter import Sandbox

        from e2bq import E2BToolkit, SandboxManager

        toolkit = E2BToolkit(SandboxManager(default_timeout=1800), auto_create_default=False)
        header("two nodes (client → Redis → the sandbox's node's worker → its sandboxd)")

        made = [toolkit.create_sandbox(timeout=1800)["result"] for _ in range(10)]
        spread = collections.Counter(slot["node"] for slot in made)
        row(
            "10 creates over two equal nodes",
            ", ".join(f"{n}: {c}" for n, c in sorted(spread.items())),
            "target 5 ± 2 each",
        )
        on_node1 = [slot["sandbox_id"] for slot in made if slot["node"] == "node1"]
        interactive, busy = on_node1[0], on_node1[1]  # the backlog on the interactive call's own node

        def p50_calls(count: int) -> list[float]:
            samples = []
            for _ in range(count):
                start = time.perf_counter()
                assert toolkit.run_python_code("1+1", sandbox_id=interactive)["status"] == "success"
                samples.append(time.perf_counter() - start)
            return samples

        p50_calls(10)
        idle = p50_calls(args.runs)
        jobs = [
            toolkit.run_python_code_background("import time; time.sleep(0.1)", sandbox_id=busy)["job_id"]
            for _ in range(args.backlog)
        ]
        loaded = p50_calls(args.runs)
        queued = sum(1 for j in jobs if toolkit.get_job_status(j).get("state") == "queued")
        ratio = pct(loaded, 50) / pct(idle, 50)
        row(
            f'run_python_code("1+1") with {args.backlog} background jobs queued on its node',
            f"{summary(loaded)}; {ratio:.2f}x idle ({queued} jobs still queued at the end)",
            f"idle: {summary(idle)}",
        )
        for job_id in jobs:
            toolkit.kill_job(job_id)

        while len(made) < args.fanout:
            made.append(toolkit.create_sandbox(timeout=1800)["result"])
        per_node = collections.Counter(slot["node"] for slot in made)
        direct = Sandbox.connect(interactive, **_sdk(stack.hosts[0].env))
        start = time.perf_counter()
        direct.run_code("import time; time.sleep(1)")
        one = time.perf_counter() - start
        toolkit.run_in_all_sandboxes("1+1", timeout_each=60)  # every connection made once
        start = time.perf_counter()
        fan = toolkit.run_in_all_sandboxes("import time; time.sleep(1)", timeout_each=60)
        wall = time.perf_counter() - start
        ok = sum(1 for r in fan["result"].values() if r["status"] == "success")
        raw = asyncio.run(_gather_directly(stack, made))
        row(
            f"fan-out time.sleep(1) over {len(fan['result'])} sandboxes "
            f"({', '.join(f'{n}: {c}' for n, c in sorted(per_node.items()))})",
            f"wall {wall:.2f} s ({ok} ok)",
            f"floor 1.00 s; the async SDK straight to both hosts, all at once from one process: "
            f"{raw:.2f} s; one sandbox's time.sleep(1) via the SDK: {ms(one)}",
        )
        toolkit.shutdown_all_sandboxes()


async def _gather_directly(stack: Stack, made: list[SlotInfo]) -> float:
    """Seconds the async SDK takes to run time.sleep(1) in every sandbox at once, with no queue."""
    from e2b_code_interpreter import AsyncSandbox

    hosts = {f"node{number}": host for number, host in enumerate(stack.hosts, start=1)}
    sandboxes = [
        await AsyncSandbox.connect(slot["sandbox_id"], **_sdk(hosts[str(slot["node"])].env)) for slot in made
    ]
    await asyncio.gather(*(sandbox.run_code("1+1") for sandbox in sandboxes))
    start = time.perf_counter()
    await asyncio.gather(*(sandbox.run_code("import time; time.sleep(1)") for sandbox in sandboxes))
    return time.perf_counter() - start


def _sdk(env: dict[str, str]) -> dict[str, str]:
    return {
        "api_key": env["E2B_API_KEY"],
        "api_url": env["E2B_API_URL"],
        "sandbox_url": env["E2B_SANDBOX_URL"],
    }


if __name__ == "__main__":
    main()
