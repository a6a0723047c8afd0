"""Batch map throughput: items/s through a pool of sandboxes on two nodes, beside the SDK alone.

Runs against the embedded default with two nodes (private Redis, two sandboxd, a worker each), all
measured in this run:
- map_python_code: 1,000 items of `sum(range(1000))` through pool_size=20 (and 4, for comparison),
  from the call until the job is done (sandboxes made, items run);
- baseline: the same 1,000 `run_code` calls straight through the SDK, one after another, against
  one sandbox that already exists.
"""

from __future__ import annotations

import argparse
import os
import time

from common import header, row

from e2bq import E2BToolkit, SandboxManager
from e2bq.embedded import embedded

CODE = "sum(range(1000))"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--pools", type=lambda text: [int(n) for n in text.split(",")], default=[20, 4])
    parser.add_argument("--nodes", type=int, default=2)
    args = parser.parse_args()

    with embedded(nodes=args.nodes) as stack:
        os.environ.update(stack.env)
        from e2b_code_interpreter import Sandbox

        toolkit = E2BToolkit(SandboxManager(default_timeout=900), auto_create_default=False)
        header(f"batch map ({args.nodes} nodes: a sandboxd and a worker each)")

        measured = [(pool, *run_map(toolkit, args.items, pool)) for pool in args.pools]

        sandbox = Sandbox.create(timeout=900)
        sandbox.run_code(CODE)
        start = time.perf_counter()
        for _ in range(args.items):
            sandbox.run_code(CODE)
        direct = time.perf_counter() - start
        sandbox.kill()

        baseline = f"SDK run_code in turn, one sandbox: {args.items / direct:.0f} items/s ({direct:.2f} s)"
        for pool, wall, outcome in measured:
            row(
                f"map_python_code: {args.items} x `{CODE}`, pool_size={pool}",
                f"{args.items / wall:.0f} items/s ({wall:.2f} s wall; {outcome})",
                baseline,
            )


def run_map(toolkit: E2BToolkit, items: int, pool: int) -> tuple[float, str]:
    """Seconds from the call until the map is done, and what it ended with."""
    start = time.perf_counter()
    job_id = toolkit.map_python_code([CODE] * items, pool_size=pool)["job_id"]
    while (record := toolkit.get_job_status(job_id))["status"] == "running":
        time.sleep(0.05)
    wall = time.perf_counter() - start
    found = toolkit.get_job_results(job_id, limit=items)
    results = found["results"] if found["status"] == "success" else []
    right = sum(1 for item in results if item.get("results", [{}])[0].get("text") == "499500")
    used = len({item["sandbox_id"] for item in results if "sandbox_id" in item})
    return wall, f"{record['status']}, {right} right, {record.get('failed')} failed, {used} sandboxes"


if __name__ == "__main__":
    main()
