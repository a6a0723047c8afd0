"""A background job's whole output: a 50 MB job through the queue against the SDK alone; its Redis cost.

Runs against the embedded default (private Redis, sandboxd, one threads-pool worker), all measured
in this run:
- a command printing ~50 MB (``head -c 37000000 /dev/zero | base64``) as a background job, from
  submit until it ended, against the same command run by the sync SDK against the same sandbox
  (runs interleaved, medians); reading all of it back with get_job_output, 1 MiB pages;
- Redis memory per MB of output: the job's output keys (MEMORY USAGE), its result's copies of the
  output (the job record's and Celery's), and all that Redis gained;
- Redis commands per flush of output: a job printing a line every 0.3 s against a silent job of the
  same length (INFO commandstats), divided by the flushes that carried output.

The sandboxd is started with 128 MiB of output per stream (its default keeps 8 MiB).
Runs against an older checkout too (without get_job_output: the read-back is skipped).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

from common import header, row, toolkit_stack

BIG = "head -c 37000000 /dev/zero | base64"  # 49.98 MB of output, in 76-character lines
LINES = 40


def wait_done(toolkit: Any, job_id: str, timeout: float = 600) -> str:
    """The job's status once it ended, polled from its record's status alone where the toolkit can
    (its result holds the command's whole output: reading it all would be timed too)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        brief = getattr(toolkit.jobs, "brief", None)
        status = brief(job_id)[1] if brief else toolkit.get_job_status(job_id)["status"]
        if status != "running":
            return str(status)
        time.sleep(0.02)
    raise TimeoutError(f"job {job_id} did not end")


def read_back(toolkit: Any, job_id: str) -> int:
    offset = 0
    while True:
        page = toolkit.get_job_output(job_id, offset=offset, limit=1024 * 1024)
        offset = page["next_offset"]
        if page["complete"]:
            return offset


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ["E2BQ_SANDBOX_OUTPUT_BYTES"] = str(128 * 1024 * 1024)

    with toolkit_stack() as (stack, toolkit, sid):
        import redis
        from celery.result import AsyncResult
        from e2b_code_interpreter import Sandbox

        raw = redis.Redis.from_url(stack.env["E2BQ_REDIS_URL"])
        header("a job's whole output (client → Redis → worker → sandboxd, and back)")
        direct = Sandbox.connect(sid)
        expected = len(direct.commands.run(BIG, timeout=0).stdout.encode())
        queued, sdk, reads, memory, keys, results = [], [], [], [], [], []
        for _ in range(args.runs):
            start = time.perf_counter()
            direct.commands.run(BIG, timeout=0)
            sdk.append(time.perf_counter() - start)

            raw.execute_command("MEMORY", "PURGE")
            before = int(raw.info("memory")["used_memory"])
            start = time.perf_counter()
            job_id = toolkit.run_command_background(BIG)["job_id"]
            status = wait_done(toolkit, job_id)
            queued.append(time.perf_counter() - start)
            assert status == "done", status
            while not raw.exists(f"celery-task-meta-{job_id}"):  # stored just after the job's end
                time.sleep(0.02)
            memory.append(int(raw.info("memory")["used_memory"]) - before)
            streams = [f"e2bq:job:{job_id}:{part}" for part in ("stdout", "stderr", "streams")]
            keys.append(sum(int(raw.memory_usage(k, samples=0) or 0) for k in streams))
            # the job's result (the dict the synchronous call returns) holds the output too, twice:
            # in the job's record and in Celery's result (MEMORY USAGE samples hash fields: HSTRLEN)
            results.append(
                int(raw.hstrlen(f"e2bq:job:{job_id}", "result"))
                + int(raw.memory_usage(f"celery-task-meta-{job_id}", samples=0) or 0)
            )
            if hasattr(toolkit, "get_job_output"):
                start = time.perf_counter()
                assert read_back(toolkit, job_id) == expected
                reads.append(time.perf_counter() - start)
            raw.delete(*raw.keys(f"e2bq:job:{job_id}*"), f"celery-task-meta-{job_id}")

        mb = expected / 1e6
        q, s = statistics.median(queued), statistics.median(sdk)
        row(
            f"a command printing {mb:.1f} MB, submit → ended, median of {args.runs}",
            f"{q:.2f} s ({q / s:.2f}x the SDK; each: {', '.join(f'{t:.2f}' for t in queued)})",
            f"the sync SDK's commands.run, same sandbox: {s:.2f} s",
        )
        if reads:
            r = statistics.median(reads)
            row("reading it all back, get_job_output, 1 MiB pages", f"{r:.2f} s ({mb / r:.0f} MB/s)", "")
        row(
            "Redis memory per MB of output",
            f"its stdout, stderr and counts: {statistics.median(keys) / expected:.2f} MB; its result "
            f"(record and Celery's): {statistics.median(results) / expected:.2f} MB; "
            f"used_memory gained: {statistics.median(memory) / expected:.2f} MB",
            "",
        )

        printing = f"for i in $(seq 1 {LINES}); do echo line $i; sleep 0.3; done"
        silent = f"sleep {LINES * 0.3:.1f}"
        spent = {}
        for name, command in (("printing", printing), ("silent", silent)):
            first = calls(raw)
            job_id = toolkit.run_command_background(command)["job_id"]
            AsyncResult(job_id, app=toolkit.dispatcher.app).get(timeout=60)  # no polls: pub/sub
            last = calls(raw)
            spent[name] = {k: last[k] - first.get(k, 0) for k in last}
        extra = {k: spent["printing"].get(k, 0) - spent["silent"].get(k, 0) for k in spent["printing"]}
        # the flushes that carried output: one APPEND to the tail each (before), or one script each
        flushes = max(1, extra.get("evalsha", 0) or extra.get("append", 0))
        shown = ", ".join(f"{k} {v:+d}" for k, v in sorted(extra.items()) if abs(v) >= flushes // 2)
        row(
            f"Redis commands of a job printing nothing for {LINES * 0.3:.0f} s",
            f"{sum(spent['silent'].values())}",
            "with the idle cluster's own commands meanwhile (heartbeats, reapers)",
        )
        row(
            "Redis commands per flush of output",
            f"{sum(extra.values()) / flushes:.1f} ({flushes} flushes; {shown})",
            f"a job printing {LINES} lines 0.3 s apart against a silent one as long",
        )
        toolkit.shutdown_all_sandboxes()


def calls(raw: Any) -> dict[str, int]:
    """Commands run so far, by name (INFO commandstats)."""
    stats = raw.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info"}


if __name__ == "__main__":
    main()
