"""Worker exits: start, work and stop an ``e2bq worker`` many times, and count how each one ended.

A worker's process must always exit cleanly (code 0) on SIGTERM, Celery's warm shutdown: a
SIGABRT (exit -6) or any other signal or code at exit is a bug (see ``SdkLoop.close``). Each cycle
starts a worker on the embedded stack (private Redis and sandboxd), makes it work, then SIGTERMs
it and waits for its exit, in turn in one of these modes:

- ``idle``: no task at all;
- ``after-jobs``: a synchronous call, then background jobs (code and a command) waited for until done;
- ``jobs-running``: background jobs (``sleep``) still running when SIGTERM comes; once the worker's
  grace period (E2BQ_WORKER_GRACE, 1 s here) ends, it hands them over, their work left running, and
  each must read ``handed_over`` after its exit; the bench then kills them (the next cycle's worker
  stops their work).

With ``--pool prefork`` the work runs in a forked child (``worker_process_shutdown``).

    python bench/worker_exit.py [--cycles 100] [--pool threads|prefork]

Prints the exit codes by mode, and any log lines saying "Fatal Python error" or "Aborted"; exits
non-zero when any exit was not 0 or a job was left running.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's e2bq, as its workers use

from e2bq.embedded import embedded
from e2bq.launch import start_worker

MODES = ("idle", "after-jobs", "jobs-running")
JOB_DEADLINE = 60.0  # seconds a job may take to end after its worker stopped


def wait_ended(toolkit: Any, job_ids: list[str], deadline: float) -> dict[str, str]:
    """The status of each job once none is running, or at ``deadline`` (monotonic)."""
    while True:
        status = {job_id: str(toolkit.get_job_status(job_id)["status"]) for job_id in job_ids}
        if "running" not in status.values() or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def wait_started(toolkit: Any, job_ids: list[str], deadline: float) -> None:
    while time.monotonic() < deadline:
        records = [toolkit.get_job_status(job_id) for job_id in job_ids]
        if all(r["status"] == "running" and r.get("state") != "queued" for r in records):
            return
        time.sleep(0.05)


def work(toolkit: Any, mode: str, sandbox_id: str) -> list[str]:
    """Give the worker its mode's work; the ids of the background jobs made."""
    if mode == "idle":
        return []
    if mode == "after-jobs":
        toolkit.run_python_code("x = 1 + 1", sandbox_id=sandbox_id)
        jobs = [
            toolkit.run_python_code_background("sum(range(1000))", sandbox_id=sandbox_id)["job_id"],
            toolkit.run_command_background("echo hi", sandbox_id=sandbox_id)["job_id"],
        ]
        wait_ended(toolkit, jobs, time.monotonic() + JOB_DEADLINE)
        return jobs
    jobs = [
        toolkit.run_python_code_background("import time; time.sleep(60)", sandbox_id=sandbox_id)["job_id"],
        toolkit.run_command_background("sleep 60", sandbox_id=sandbox_id)["job_id"],
    ]
    wait_started(toolkit, jobs, time.monotonic() + 30)
    return jobs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--pool", choices=("threads", "prefork"), default="threads")
    args = parser.parse_args()
    worker_args = ("--pool", "prefork", "--concurrency", "2") if args.pool == "prefork" else ()

    codes: collections.Counter[tuple[str, int]] = collections.Counter()
    job_ends: collections.Counter[tuple[str, str]] = collections.Counter()
    fatal: list[str] = []
    with embedded(workers=0, warm_pool=1) as stack:
        os.environ.update(stack.env)
        from e2bq import E2BToolkit, SandboxManager

        env = {**stack.node_env(1), "E2BQ_WORKER_GRACE": "1"}
        toolkit = E2BToolkit(SandboxManager(default_timeout=3600), auto_create_default=False)
        sandbox_id = ""
        began = time.monotonic()
        for cycle in range(args.cycles):
            mode = MODES[cycle % len(MODES)]
            worker = start_worker(stack.workdir, *worker_args, name=f"cycle{cycle}", env=env, grace=60)
            try:
                if not sandbox_id:
                    sandbox_id = str(toolkit.create_sandbox()["sandbox_id"])
                jobs = work(toolkit, mode, sandbox_id)
                worker.proc.send_signal(signal.SIGTERM)
                code = worker.proc.wait(timeout=90)
            finally:
                worker.stop()
            codes[(mode, code)] += 1
            text = worker.log.read_text(errors="replace")
            fatal += [
                f"cycle{cycle} ({mode}): {line}"
                for line in text.splitlines()
                if "Fatal Python error" in line or "Aborted" in line
            ]
            if mode == "jobs-running":  # handed over at exit; no worker is left to take them over
                for job_id in jobs:
                    handed = toolkit.get_job_status(job_id).get("state") == "handed_over"
                    job_ends[(mode, "handed over" if handed else "not handed over")] += 1
                    toolkit.kill_job(job_id)
            for status in wait_ended(toolkit, jobs, time.monotonic() + JOB_DEADLINE).values():
                job_ends[(mode, status)] += 1
            if code != 0:
                print(f"  cycle {cycle} ({mode}): exit {code}; log {worker.log}", flush=True)
        took = time.monotonic() - began
        toolkit.shutdown_all_sandboxes()

    print(f"\nworker exits: {args.cycles} cycles, {args.pool} pool, {took:.0f} s")
    for (mode, code), count in sorted(codes.items()):
        print(f"  {mode:13} exit {code:3}: {count}")
    for (mode, status), count in sorted(job_ends.items()):
        print(f"  {mode:13} jobs ended {status}: {count}")
    for line in fatal:
        print(f"  {line}")
    clean = all(code == 0 for _, code in codes) and not fatal
    left = any(status in ("running", "not handed over") for _, status in job_ends)
    return 0 if clean and not left else 1


if __name__ == "__main__":
    sys.exit(main())
