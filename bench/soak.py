"""Soak: background jobs on three workers while workers are SIGKILLed and replaced.

Runs the embedded stack (private Redis, sandboxd, three threads-pool workers) and submits 1,000
background jobs: ``run_python_code_background("1+1")``, ``run_command_background("true")`` and a few
``sleep 2``. While they run, it SIGKILLs a random worker three times (as the jobs ended pass 25%, 50%
and 75%) and starts a replacement each time. Then it waits, with a deadline, until no job is
``running``, and prints what became of every job. Every job must end: ``running`` and ``missing``
must be 0, and the only errors are jobs whose worker was killed under them ("worker lost").

A worker killed after taking a job's message but before acknowledging it leaves that message to
the broker, which hands it out again after its visibility timeout: the soak sets
E2BQ_VISIBILITY_TIMEOUT to 30 s (unless set) so that such a job runs within the deadline.

    python bench/soak.py [--jobs 1000] [--kills 3] [--workers 3] [--deadline 300]

Takes a few minutes on 2 cores; exits non-zero when a job is left running, missing, or failed
otherwise.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's e2bq, as its workers use

from e2bq.embedded import Stack, embedded
from e2bq.launch import WorkerProcess

SLEEPER_EVERY = 50  # one job in this many is a `sleep 2`, which a kill is likely to catch running


def job_kind(index: int) -> str:
    if index % SLEEPER_EVERY == SLEEPER_EVERY // 2:
        return "sleep 2"
    return "code 1+1" if index % 2 else "command true"


def submit(toolkit: Any, kind: str, sandbox_id: str) -> dict[str, Any]:
    if kind == "code 1+1":
        return dict(toolkit.run_python_code_background("1+1", sandbox_id=sandbox_id))
    command = "sleep 2" if kind == "sleep 2" else "true"
    return dict(toolkit.run_command_background(command, sandbox_id=sandbox_id))


def live_workers(stack: Stack) -> list[WorkerProcess]:
    return [running for running in stack.workers if running.running()]


def kill_one(stack: Stack, rng: random.Random, replacement: str) -> str:
    """SIGKILL a random live worker (threads pool: one process) and start a replacement."""
    victim = rng.choice(live_workers(stack))
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait()
    stack.add_worker(name=replacement)
    return victim.name


def outcome(record: dict[str, Any] | None) -> str:
    if record is None:
        return "missing"
    status = str(record["status"])
    if status == "error":
        return "error (worker lost)" if str(record.get("message", "")).startswith("worker lost") else "error"
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--sandboxes", type=int, default=3)
    parser.add_argument("--deadline", type=float, default=300, help="seconds to wait for every job to end")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    os.environ.setdefault("E2BQ_VISIBILITY_TIMEOUT", "30")

    with embedded(workers=args.workers) as stack:
        os.environ.update(stack.env)
        from e2bq import E2BToolkit, SandboxManager

        toolkit = E2BToolkit(SandboxManager(default_timeout=1800), auto_create_default=False)
        sandboxes = [toolkit.create_sandbox()["sandbox_id"] for _ in range(args.sandboxes)]
        print(
            f"soak: {args.jobs} jobs, {args.workers} workers, {args.kills} SIGKILLs, visibility timeout "
            f"{os.environ['E2BQ_VISIBILITY_TIMEOUT']} s; logs: {stack.workdir}"
        )

        began = time.monotonic()
        kinds: dict[str, str] = {}
        refused: collections.Counter[str] = collections.Counter()
        for index in range(args.jobs):
            kind = job_kind(index)
            accepted = submit(toolkit, kind, sandboxes[index % len(sandboxes)])
            if accepted.get("status") == "accepted":
                kinds[accepted["job_id"]] = kind
            else:
                refused[str(accepted.get("message"))] += 1
        submitted_in = time.monotonic() - began
        print(f"  submitted {len(kinds)} in {submitted_in:.1f} s ({len(kinds) / submitted_in:.0f}/s)")

        thresholds = [(k + 1) / (args.kills + 1) for k in range(args.kills)]
        deadline = time.monotonic() + args.deadline
        outcomes: dict[str, str] = {}
        while True:
            outcomes = {job_id: outcome(toolkit.jobs.get(job_id)) for job_id in kinds}  # type: ignore[arg-type]
            running = sum(1 for o in outcomes.values() if o == "running")
            ended = len(outcomes) - running
            if thresholds and ended >= thresholds[0] * len(kinds):
                thresholds.pop(0)
                replacement = f"replacement{args.kills - len(thresholds)}"
                killed = kill_one(stack, rng, replacement)
                print(
                    f"  t={time.monotonic() - began:5.1f} s  {ended}/{len(kinds)} ended, {running} running: "
                    f"SIGKILLed {killed}, started {replacement}"
                )
            elif not running and not thresholds:
                break
            if time.monotonic() > deadline:
                print(f"  deadline of {args.deadline:g} s passed with {running} jobs running:")
                for job_id in (j for j, o in outcomes.items() if o == "running"):
                    record = toolkit.jobs.get(job_id) or {}
                    print(f"    {job_id} {kinds[job_id]}: {record.get('state')} on {record.get('worker')}")
                break
            time.sleep(0.5)
        took = time.monotonic() - began

    counts = collections.Counter(outcomes.values())
    by_kind = collections.Counter((kinds[j], o) for j, o in outcomes.items() if o != "done")
    lost = counts["error (worker lost)"]
    print()
    print(f"  submitted            {len(kinds)}" + (f"   (refused: {dict(refused)})" if refused else ""))
    print(f"  done                 {counts['done']}")
    print(f"  error (worker lost)  {lost}")
    print(f"  error (other)        {counts['error']}")
    print(f"  cancelled            {counts['cancelled']}")
    print(f"  running              {counts['running']}   (must be 0)")
    print(f"  missing records      {counts['missing']}   (must be 0)")
    if by_kind:
        print("  not done, by kind:   " + ", ".join(f"{k} {o}: {n}" for (k, o), n in sorted(by_kind.items())))
    print(f"  took                 {took:.1f} s until no job was running")
    ok = not refused and counts["running"] == 0 and counts["missing"] == 0 and counts["error"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
