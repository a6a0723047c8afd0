"""Soak: background jobs on three workers while workers are SIGKILLed and replaced.

Runs the embedded stack (private Redis, sandboxd, three threads-pool workers) and submits 1,000
background jobs, commands and code, each of which appends a line naming it to ``~/effects`` in its
sandbox: most at once, one in 25 after a 2 s sleep (a kill is likely to catch those running), and
two in 100 after a 60 s sleep, killed on purpose with ``kill_job`` once everything is submitted.
While they run, it SIGKILLs a random worker three times (as the jobs ended pass 25%, 50% and 75%)
and starts a replacement each time, and, as they pass 40%, SIGKILLs the Redis master: Redis runs as
a master, two replicas and three Sentinels (``e2bq.launch.sentinel``) and the stack reaches it by a
``sentinel://`` URL, so a replica is promoted and the work carries on. A worker that exits by
itself is restarted, as a supervisor would (and counted). Then it waits, with a deadline, until no
job is ``running``, reads every sandbox's ``~/effects`` and prints what became of every job and its
line.

What must hold: no job ``running`` or missing; no job ended ``error`` (a job whose worker died is
taken over by another worker, which re-attaches to its work); every ``done`` job's line appears
exactly once (a takeover never runs the work again), and a killed job's line never appears.

    python bench/soak.py [--jobs 1000] [--kills 3] [--workers 3] [--deadline 400] [--no-failover]

Takes a few minutes on 2 cores; exits non-zero when any of that does not hold.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's e2bq, as its workers use

from e2bq.embedded import Stack, embedded
from e2bq.errors import E2BQError
from e2bq.launch import WorkerProcess
from e2bq.launch.sentinel import SentinelCluster, start_sentinel_cluster

FAILOVER_AT = 0.4  # the Redis master is killed as the jobs ended pass this share

SLEEPER_EVERY = 25  # one job in this many sleeps 2 s first: a kill is likely to catch it running
KILLED_EVERY = 100  # two jobs in this many sleep 60 s first, and are killed on purpose


def job_kind(index: int) -> str:
    language = "code" if index % 2 else "command"
    if index % KILLED_EVERY in (KILLED_EVERY // 2, KILLED_EVERY // 2 + 1):
        return f"{language} killed"
    if index % SLEEPER_EVERY == SLEEPER_EVERY // 3:
        return f"{language} sleeps"
    return language


def submit(toolkit: Any, kind: str, index: int, sandbox_id: str) -> dict[str, Any]:
    """Submit job ``index``: it appends the line ``j<index>`` to ~/effects, after a sleep for some."""
    pause = 60 if kind.endswith("killed") else 2 if kind.endswith("sleeps") else 0
    if kind.startswith("code"):
        code = f"import time\ntime.sleep({pause})\nopen('/home/user/effects', 'a').write('j{index}\\n')"
        return dict(toolkit.run_python_code_background(code, sandbox_id=sandbox_id))
    command = f"sleep {pause}; echo j{index} >> ~/effects" if pause else f"echo j{index} >> ~/effects"
    return dict(toolkit.run_command_background(command, sandbox_id=sandbox_id))


def effects(toolkit: Any, sandboxes: list[str]) -> collections.Counter[str]:
    """How many times each job's line appears in the sandboxes' ~/effects."""
    lines: collections.Counter[str] = collections.Counter()
    for sandbox_id in sandboxes:
        read = toolkit.run_command("cat ~/effects 2>/dev/null || true", sandbox_id=sandbox_id)
        if read.get("status") != "success":
            raise SystemExit(f"cannot read the effects in {sandbox_id}: {read.get('message')}")
        lines.update(read["stdout"].split())
    return lines


def failover(cluster: SentinelCluster) -> float:
    """SIGKILL the Redis master; seconds until the Sentinels promoted a replica."""
    began = time.monotonic()
    old = cluster.kill_master()
    cluster.wait_for_failover(60, old=old)
    return time.monotonic() - began


def live_workers(stack: Stack) -> list[WorkerProcess]:
    return [running for running in stack.workers if running.running()]


def restart_crashed(stack: Stack, killed: set[str]) -> list[str]:
    """Start a replacement for each worker that exited by itself (not one this soak killed), as a
    supervisor would; the names of those that crashed."""
    crashed = [w.name for w in stack.workers if not w.running() and w.name not in killed]
    for name in crashed:
        killed.add(name)  # replaced once
        stack.add_worker(name=f"{name}-restarted")
    return crashed


def read_outcomes(toolkit: Any, job_ids: list[str], last: dict[str, str]) -> dict[str, str]:
    """Each job's outcome; while Redis fails over, the last ones read stand."""
    try:
        return {job_id: outcome(toolkit.jobs.get(job_id)) for job_id in job_ids}
    except E2BQError:
        return last


def kill_one(stack: Stack, rng: random.Random, replacement: str, killed: set[str]) -> str:
    """SIGKILL a random live worker (threads pool: one process) and start a replacement."""
    victim = rng.choice(live_workers(stack))
    killed.add(victim.name)
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
    parser.add_argument("--deadline", type=float, default=400, help="seconds to wait for every job to end")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--no-failover", dest="failover", action="store_false", help="one plain redis-server")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    os.environ.setdefault("E2BQ_VISIBILITY_TIMEOUT", "30")

    folder = Path(tempfile.mkdtemp(prefix="e2bq-soak-"))
    with contextlib.ExitStack() as started:
        cluster = started.enter_context(start_sentinel_cluster(folder / "redis")) if args.failover else None
        stack = started.enter_context(
            embedded(workers=args.workers, redis_url=cluster.url if cluster else None, workdir=folder)
        )
        os.environ.update(stack.env)
        from e2bq import E2BToolkit, SandboxManager

        toolkit = E2BToolkit(SandboxManager(default_timeout=1800), auto_create_default=False)
        sandboxes = [toolkit.create_sandbox()["sandbox_id"] for _ in range(args.sandboxes)]
        print(
            f"soak: {args.jobs} jobs, {args.workers} workers, {args.kills} SIGKILLs, "
            f"{'a Redis failover' if cluster else 'no Redis failover'}, visibility timeout "
            f"{os.environ['E2BQ_VISIBILITY_TIMEOUT']} s; logs: {stack.workdir}"
        )

        began = time.monotonic()
        kinds: dict[str, str] = {}
        lines: dict[str, str] = {}  # job id -> the line it appends
        refused: collections.Counter[str] = collections.Counter()
        for index in range(args.jobs):
            kind = job_kind(index)
            accepted = submit(toolkit, kind, index, sandboxes[index % len(sandboxes)])
            if accepted.get("status") == "accepted":
                kinds[accepted["job_id"]] = kind
                lines[accepted["job_id"]] = f"j{index}"
            else:
                refused[str(accepted.get("message"))] += 1
        submitted_in = time.monotonic() - began
        print(f"  submitted {len(kinds)} in {submitted_in:.1f} s ({len(kinds) / submitted_in:.0f}/s)")
        killed_on_purpose = [job_id for job_id, kind in kinds.items() if kind.endswith("killed")]
        for job_id in killed_on_purpose:
            toolkit.kill_job(job_id)

        thresholds = [(k + 1) / (args.kills + 1) for k in range(args.kills)]
        failover_at = FAILOVER_AT if cluster else None
        deadline = time.monotonic() + args.deadline
        outcomes: dict[str, str] = {job_id: "running" for job_id in kinds}
        killed: set[str] = set()
        crashes: list[str] = []
        while True:
            outcomes = read_outcomes(toolkit, list(kinds), outcomes)
            running = sum(1 for o in outcomes.values() if o == "running")
            ended = len(outcomes) - running
            at = f"  t={time.monotonic() - began:5.1f} s  {ended}/{len(kinds)} ended, {running} running:"
            if cluster and failover_at is not None and ended >= failover_at * len(kinds):
                failover_at = None
                promoted_in = failover(cluster)
                print(f"{at} SIGKILLed the Redis master; a replica was promoted {promoted_in:.1f} s later")
            elif thresholds and ended >= thresholds[0] * len(kinds):
                thresholds.pop(0)
                replacement = f"replacement{args.kills - len(thresholds)}"
                victim = kill_one(stack, rng, replacement, killed)
                print(f"{at} SIGKILLed {victim}, started {replacement}")
            elif not running and not thresholds and failover_at is None:
                break
            for name in restart_crashed(stack, killed):
                crashes.append(name)
                print(f"{at} worker {name} exited by itself: restarted")
            if time.monotonic() > deadline:
                print(f"  deadline of {args.deadline:g} s passed with {running} jobs running:")
                for job_id in (j for j, o in outcomes.items() if o == "running"):
                    record = toolkit.jobs.get(job_id) or {}
                    print(f"    {job_id} {kinds[job_id]}: {record.get('state')} on {record.get('worker')}")
                break
            time.sleep(0.5)
        took = time.monotonic() - began
        appeared = effects(toolkit, sandboxes)
        records = {job_id: toolkit.jobs.get(job_id) or {} for job_id in kinds}

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
    restarted = f"   ({', '.join(crashes)}; restarted)" if crashes else ""
    print(f"  workers that crashed {len(crashes)}{restarted}")
    taken_over = sum(1 for record in records.values() if record.get("takeovers"))
    once = sum(1 for j, o in outcomes.items() if o == "done" and appeared[lines[j]] == 1)
    twice = sum(1 for j in kinds if appeared[lines[j]] > 1)
    never = sum(1 for j, o in outcomes.items() if o == "done" and appeared[lines[j]] == 0)
    killed_ran = sum(1 for j in killed_on_purpose if appeared[lines[j]])
    print(f"  taken over           {taken_over}   (jobs whose worker died under them)")
    print(f"  effects exactly once {once} of {counts['done']} done jobs")
    print(f"  duplicate effects    {twice}   (must be 0)")
    print(f"  done, no effect      {never}   (must be 0)")
    print(f"  killed, yet ran      {killed_ran} of {len(killed_on_purpose)} killed on purpose   (must be 0)")
    for job_id, kind in kinds.items():
        seen, record = appeared[lines[job_id]], records[job_id]
        if seen > 1 or (outcomes[job_id] == "done") != bool(seen):
            print(
                f"    {job_id} {kind} {lines[job_id]} x{seen}: {outcomes[job_id]}, takeovers "
                f"{record.get('takeovers', 0)} from {record.get('handed_from')} by {record.get('worker')}"
            )
    ok = (
        not refused
        and counts["running"] == counts["missing"] == counts["error"] == lost == 0
        and twice == never == killed_ran == 0
        and counts["cancelled"] == len(killed_on_purpose)
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
