"""The queue: latency over the SDK, job throughput, kill latency, fan-out — each beside a baseline.

Runs against the embedded default (private Redis, sandboxd, one threads-pool worker), all measured
in this run:
- background jobs per second vs Celery no-op tasks on the same broker and worker, and vs the SDK
  alone driving the same kernel from 32 threads (one kernel runs one cell at a time), with the Redis
  commands each costs;
- kill_job latency: from kill_job() until the worker has stopped the job's process;
- fan-out of time.sleep(1) over 20 sandboxes, wall time, vs the 1 s floor.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import time

from common import RedisCounter, header, row, summary, toolkit_stack
from targets import Figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--fanout", type=int, default=20)
    parser.add_argument("--json", default=None, help="write the figures to this file (merged)")
    args = parser.parse_args()
    figures = Figures()

    with toolkit_stack() as (stack, toolkit, sid):
        from celery.result import AsyncResult
        from e2b_code_interpreter import Sandbox

        header("queue (client → Redis → Celery worker → sandboxd)")
        app = toolkit.dispatcher.app
        counter = RedisCounter(stack.env["E2BQ_REDIS_URL"])
        toolkit.run_python_code("1+1")

        def noop_batch() -> None:
            sent = [
                app.send_task("celery.accumulate", args=(1,), queue=stack_queue()) for _ in range(args.jobs)
            ]
            for result in sent:
                result.get(timeout=120)

        def job_batch() -> None:
            job_ids = [toolkit.run_python_code_background("1+1")["job_id"] for _ in range(args.jobs)]
            for job_id in job_ids:
                AsyncResult(job_id, app=app).get(timeout=300)
            statuses.update(toolkit.get_job_status(j)["status"] for j in job_ids)

        statuses: set[str] = set()
        start = time.perf_counter()
        noop_commands = counter.per_call(noop_batch, 1) / args.jobs
        noop_rate = figures.record("noop_tasks_per_s", args.jobs / (time.perf_counter() - start))
        start = time.perf_counter()
        job_commands = counter.per_call(job_batch, 1) / args.jobs
        job_rate = figures.record("jobs_per_s", args.jobs / (time.perf_counter() - start))
        direct = Sandbox.connect(sid)
        direct.run_code("1+1")
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            list(pool.map(lambda _: direct.run_code("1+1"), range(args.jobs)))
        kernel_rate = args.jobs / (time.perf_counter() - start)
        row(
            f"background jobs ({args.jobs} x run_code 1+1, one sandbox)",
            f"{job_rate:.0f} jobs/s (all {sorted(statuses)}); {job_commands:.1f} Redis commands each",
            f"Celery no-op tasks: {noop_rate:.0f}/s, {noop_commands:.1f} Redis commands each; "
            f"the SDK alone, 32 threads on the same kernel: {kernel_rate:.0f} run_code/s",
        )
        figures.record("redis_per_job", job_commands)
        figures.record("sdk_run_code_per_s", kernel_rate)

        kills = []
        for _ in range(args.kills):
            job_id = toolkit.run_command_background("sleep 60")["job_id"]
            while not toolkit.get_job_status(job_id).get("pid"):
                time.sleep(0.01)
            start = time.perf_counter()
            toolkit.kill_job(job_id)
            AsyncResult(job_id, app=app).get(timeout=30)
            kills.append(time.perf_counter() - start)
        row("kill_job → work stopped", summary(kills), "")

        for _ in range(args.fanout - 1):
            toolkit.create_sandbox(timeout=600)
        start = time.perf_counter()
        fan = toolkit.run_in_all_sandboxes("import time; time.sleep(1)", timeout_each=60)
        wall = time.perf_counter() - start
        ok = sum(1 for r in fan["result"].values() if r["status"] == "success")
        row(
            f"fan-out time.sleep(1) over {len(fan['result'])} sandboxes",
            f"wall {wall:.2f} s ({ok} ok)",
            f"floor 1.00 s; one after another {len(fan['result'])}.00 s",
        )
        toolkit.shutdown_all_sandboxes()
    figures.dump(args.json)


def stack_queue() -> str:
    return os.environ.get("E2BQ_QUEUE", "e2bq")


if __name__ == "__main__":
    main()
