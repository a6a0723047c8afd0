"""Redis failover behind Sentinel: how long calls stall, what ~200 jobs lose, what WAIT costs.

Starts a Sentinel cluster (master, two replicas, three Sentinels with down-after 1 s) and the
embedded stack on it through a Sentinel URL, then measures:

1. WAIT's cost per job: the job store's end transition with ``E2BQ_REDIS_WAIT_REPLICAS=1`` beside
   the same transition without WAIT and a Redis PING, interleaved in blocks in the same run.
2. Recovery: the master is SIGKILLed ``--runs`` times (the old one returns as a replica between
   runs); the time from the kill to the return of the first toolkit call made right after it
   (a synchronous ``run_python_code``, which rides the failover out), and to the promotion.
3. Loss: ``--jobs`` background commands, half sent before the kill and half during the failover;
   what became of each (done with the right output, error, missing, still running).

    python bench/failover_bench.py [--runs 5] [--jobs 200] [--wait-samples 1000] [--without-mingle]
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's e2bq

from bench.common import header, pct, row, summary
from e2bq import E2BToolkit, SandboxManager, Settings
from e2bq.embedded import embedded
from e2bq.launch import SentinelCluster, start_sentinel_cluster
from e2bq.stores.connection import connect
from e2bq.stores.jobs import JobStore

BLOCK = 50  # transitions timed in a row before switching variant


def wait_cost(cluster: SentinelCluster, samples: int) -> None:
    header(f"WAIT on a job's end ({samples} per variant, interleaved)")
    variants = {
        "end + WAIT 1": JobStore(Settings(redis_url=cluster.url, redis_wait_replicas=1)),
        "end, no WAIT": JobStore(Settings(redis_url=cluster.url, redis_wait_replicas=0)),
    }
    ping = connect(Settings(redis_url=cluster.url))
    times: dict[str, list[float]] = {name: [] for name in [*variants, "PING"]}
    for _ in range(samples // BLOCK):
        for name, jobs in variants.items():
            for _ in range(BLOCK):
                job_id = uuid.uuid4().hex
                jobs.create(job_id, "command", "bench", "bench")
                began = time.perf_counter()
                jobs.finish(job_id, "done", {"status": "success"})
                times[name].append(time.perf_counter() - began)
        for _ in range(BLOCK):
            began = time.perf_counter()
            ping.ping()
            times["PING"].append(time.perf_counter() - began)
    p50 = {name: statistics.median(spent) for name, spent in times.items()}
    for name, spent in times.items():
        row(name, f"p50 {_us(p50[name])}  p95 {_us(pct(spent, 95))}  mean {_us(statistics.fmean(spent))}")
    cost = p50["end + WAIT 1"] - p50["end, no WAIT"]
    row("WAIT's cost per job (p50 difference)", _us(cost), f"PING p50 {_us(p50['PING'])}")


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} µs"


def recovery(cluster: SentinelCluster, toolkit: E2BToolkit, runs: int) -> None:
    header(f"master SIGKILLed, {runs} runs")
    first_call, promoted = [], []
    for run in range(runs):
        _wait_until(cluster.failover_ready_at())
        assert toolkit.run_python_code("1", timeout=30)["status"] == "success"
        old = cluster.kill_master()
        killed = time.monotonic()
        # the call rides the failover out in a thread while the Sentinels are watched here
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            call = pool.submit(_timed_call, toolkit)
            cluster.wait_for_failover(60, old=old)
            promoted.append(cluster.last_failover - killed)
            status, returned = call.result()
        first_call.append(returned - killed)
        print(f"run {run + 1}: call {status} after {first_call[-1]:.2f} s; "
              f"promotion seen after {promoted[-1]:.2f} s", flush=True)
        cluster.revive(old)
    row("kill -> promotion seen by the Sentinels", summary(promoted))
    row("kill -> first call returns (success)", summary(first_call))
    lag = [call - seen for call, seen in zip(first_call, promoted, strict=True)]
    row("promotion -> that call returns", summary(lag))


def _timed_call(toolkit: E2BToolkit) -> tuple[str, float]:
    answer = toolkit.run_python_code("6 * 7", timeout=120)
    return str(answer["status"]), time.monotonic()


def loss(cluster: SentinelCluster, toolkit: E2BToolkit, jobs: int) -> None:
    header(f"{jobs} background jobs across a failover")
    _wait_until(cluster.failover_ready_at())
    sent: dict[str, int] = {}
    for i in range(jobs // 2):
        sent[toolkit.run_command_background(f"sleep 0.1; echo job-{i}")["job_id"]] = i
    old = cluster.kill_master()
    killed = time.monotonic()
    for i in range(jobs // 2, jobs):
        sent[toolkit.run_command_background(f"sleep 0.1; echo job-{i}")["job_id"]] = i
    print(f"second half sent {time.monotonic() - killed:.2f} s after the kill", flush=True)
    cluster.wait_for_failover(60, old=old)
    outcome = _ends(toolkit, sent, deadline=time.monotonic() + 300)
    for name, count in sorted(outcome.items()):
        row(name, str(count))
    cluster.revive(old)


def _ends(toolkit: E2BToolkit, sent: dict[str, int], *, deadline: float) -> collections.Counter[str]:
    pending = dict(sent)
    outcome: collections.Counter[str] = collections.Counter()
    while pending and time.monotonic() < deadline:
        for job_id, i in list(pending.items()):
            record: dict[str, Any] = dict(toolkit.get_job_status(job_id))
            if record["status"] == "running":
                continue
            del pending[job_id]
            if record["status"] == "done" and record["result"]["stdout"] == f"job-{i}\n":
                outcome["done, right output"] += 1
            else:
                outcome[f"{record['status']}: {str(record.get('message'))[:60]}"] += 1
        time.sleep(0.2)
    outcome["still running at the deadline"] = len(pending)
    return outcome


def _wait_until(moment: float) -> None:
    """The Sentinels refuse a second failover of one master too soon after the first."""
    time.sleep(max(0.0, moment - time.monotonic()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--wait-samples", type=int, default=1000)
    parser.add_argument(
        "--without-mingle", action="store_true", help="workers skip Celery's ~1 s mingle at each reconnect"
    )
    args = parser.parse_args()
    worker_args = ("--concurrency", "8", *(("--without-mingle",) if args.without_mingle else ()))
    folder = Path(tempfile.mkdtemp(prefix="e2bq-failover-"))
    with start_sentinel_cluster(folder / "redis") as cluster:
        print(f"cluster: {cluster.url}; logs under {folder}", flush=True)
        wait_cost(cluster, args.wait_samples)
        with embedded(redis_url=cluster.url, worker_args=worker_args, workdir=folder) as stack:
            os.environ.update(stack.env)
            toolkit = E2BToolkit(SandboxManager(default_timeout=900), auto_create_default=True)
            recovery(cluster, toolkit, args.runs)
            loss(cluster, toolkit, args.jobs)


if __name__ == "__main__":
    main()
