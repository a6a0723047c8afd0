"""The queue: latency over the SDK, job throughput, kill latency, fan-out — each beside a baseline.

Runs against the embedded default (private Redis, sandboxd, one threads-pool worker), all measured
in this run:
- run_python_code("1+1") through the queue vs the SDK straight to sandboxd;
- background jobs per second vs Celery no-op tasks on the same broker and worker;
- kill_job latency: from kill_job() until the worker has stopped the job's process;
- fan-out of time.sleep(1) over 20 sandboxes, wall time, vs the 1 s floor.
"""

from __future__ import annotations

import argparse
import os
import time

from common import header, ms, pct, row, summary

from e2bq.embedded import embedded


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--fanout", type=int, default=20)
    args = parser.parse_args()

    with embedded(worker_args=("--pool", "threads", "--concurrency", "32")) as stack:
        os.environ.update(stack.env)
        from celery.result import AsyncResult
        from e2b_code_interpreter import Sandbox

        from e2bq import E2BToolkit, SandboxManager

        toolkit = E2BToolkit(SandboxManager(default_timeout=900), auto_create_default=True)
        sid = toolkit.list_managed_sandboxes()["default_sandbox_id"]
        header("queue (client → Redis → Celery worker → sandboxd)")

        toolkit.run_python_code("1+1")
        queued = []
        for _ in range(args.runs):
            start = time.perf_counter()
            assert toolkit.run_python_code("1+1")["status"] == "success"
            queued.append(time.perf_counter() - start)
        direct_sbx = Sandbox.connect(sid)
        direct_sbx.run_code("1+1")
        direct = []
        for _ in range(args.runs):
            start = time.perf_counter()
            direct_sbx.run_code("1+1")
            direct.append(time.perf_counter() - start)
        extra = pct(queued, 50) - pct(direct, 50)
        baseline = f"SDK direct: p50 {ms(pct(direct, 50))}; the queue adds {ms(extra)}"
        row('run_python_code("1+1")', summary(queued), baseline)

        app = toolkit.dispatcher.app
        start = time.perf_counter()
        noop = [app.send_task("celery.accumulate", args=(1,), queue=stack_queue()) for _ in range(args.jobs)]
        for result in noop:
            result.get(timeout=120)
        noop_rate = args.jobs / (time.perf_counter() - start)
        start = time.perf_counter()
        job_ids = [toolkit.run_python_code_background("1+1")["job_id"] for _ in range(args.jobs)]
        for job_id in job_ids:
            AsyncResult(job_id, app=app).get(timeout=300)
        job_rate = args.jobs / (time.perf_counter() - start)
        statuses = {toolkit.get_job_status(j)["status"] for j in job_ids}
        row(f"background jobs ({args.jobs} x run_code 1+1)", f"{job_rate:.0f} jobs/s (all {statuses})",
            f"Celery no-op tasks: {noop_rate:.0f} tasks/s")

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
        row(f"fan-out time.sleep(1) over {len(fan['result'])} sandboxes", f"wall {wall:.2f} s ({ok} ok)",
            f"floor 1.00 s; one after another {len(fan['result'])}.00 s")
        toolkit.shutdown_all_sandboxes()


def stack_queue() -> str:
    return os.environ.get("E2BQ_QUEUE", "e2bq")


if __name__ == "__main__":
    main()
