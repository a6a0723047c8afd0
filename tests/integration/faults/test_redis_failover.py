"""Redis behind Sentinel: the stack works through a Sentinel URL, and when the master is SIGKILLed
mid-run a replica is promoted and work carries on — calls succeed again within a bounded wait,
queued jobs run, running jobs end, none stays ``running``."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from e2bq.config import Settings
from e2bq.launch import SentinelCluster, start_sentinel_cluster
from e2bq.stores.jobs import JobStore
from e2bq.stores.keys import job_key
from tests.integration.faults.conftest import Stack, build_stack, job_ended
from tests.procs import sandbox_host, wait_for

FAILOVER_BOUND = 30  # seconds from the master's death to a call that succeeds again


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    with start_sentinel_cluster(tmp_path / "redis") as running:
        yield running
        # The test's clients are garbage now: collect them while their Redis still answers. Celery
        # 5.4's AsyncResult.__del__ unsubscribes, retrying for ~30 s against a Redis that is gone,
        # inside whatever the next test is doing when the collector runs.
        gc.collect()


@pytest.fixture
def stack(tmp_path: Path, cluster: SentinelCluster) -> Iterator[Stack]:
    with sandbox_host(tmp_path) as host, build_stack(tmp_path, cluster.url, host) as built:
        yield built


def replicas_holding(cluster: SentinelCluster, job_id: str, status: str) -> int:
    """How many replicas already hold the job's record with this status (read there directly)."""
    _, master_port = cluster.master_address()
    count = 0
    for server in cluster.servers:
        if server.running() and server.port != master_port:
            with redis.Redis.from_url(server.url, decode_responses=True) as replica:
                count += replica.hget(job_key(job_id), "status") == f'"{status}"'
    return count


@pytest.mark.slow
def test_the_stack_works_through_a_sentinel_url(stack: Stack, cluster: SentinelCluster) -> None:
    stack.worker()
    toolkit = stack.toolkit()
    answer = toolkit.run_python_code("6 * 7", timeout=30)
    assert answer["status"] == "success", answer
    assert answer["results"][0]["text"] == "42"
    job_id = toolkit.run_command_background("echo through-sentinel")["job_id"]
    record = job_ended(toolkit, job_id, 60)
    assert record["status"] == "done", record
    assert record["result"]["stdout"] == "through-sentinel\n"
    # a job's end is WAITed for: a replica had it before the end was reported
    assert replicas_holding(cluster, job_id, "done") >= 1


@pytest.mark.slow
def test_work_carries_on_when_the_master_is_killed(stack: Stack, cluster: SentinelCluster) -> None:
    # Two slots: of the jobs below, two run while the master dies and the rest wait in the queue.
    stack.worker("--concurrency", "2")
    toolkit = stack.toolkit()
    assert toolkit.run_python_code("1", timeout=30)["status"] == "success"
    jobs = [toolkit.run_command_background(f"sleep 2; echo job-{i}")["job_id"] for i in range(6)]
    wait_for(lambda: toolkit.get_job_status(jobs[0]).get("state") == "started", 60, "a job to start")

    old = cluster.kill_master()
    killed = time.monotonic()
    # The first call after the kill rides the failover out (its retries outlast it)...
    answer = toolkit.run_python_code("6 * 7", timeout=60)
    recovered = time.monotonic() - killed
    assert answer["status"] == "success", answer
    assert answer["results"][0]["text"] == "42"
    assert recovered < FAILOVER_BOUND
    # ...a replica was promoted...
    assert cluster.wait_for_failover(FAILOVER_BOUND, old=old) != old
    # ...and every job, running or queued when the master died, ends and ran its command.
    for i, job_id in enumerate(jobs):
        record = job_ended(toolkit, job_id, 120, f"job {job_id} (sent before the failover) to end")
        assert record["status"] == "done", (record.get("message"), record)
        assert record["result"]["stdout"] == f"job-{i}\n"
    after = toolkit.run_command_background("echo after")["job_id"]
    assert job_ended(toolkit, after, 60)["status"] == "done"
    assert all(w.running() for w in stack.workers)


@pytest.mark.slow
def test_the_stores_follow_the_master_through_two_failovers(cluster: SentinelCluster) -> None:
    """No worker needed: a job ended before each kill is read back from the promoted replica, by a
    store whose commands ride the failover out, and the killed master returns as a replica."""
    jobs = JobStore(Settings(redis_url=cluster.url))
    for round_ in range(2):
        job_id = f"job-{round_}"
        jobs.create(job_id, "command", "sbx", "faults")
        assert jobs.finish(job_id, "done", {"status": "success", "round": round_})
        ready = cluster.failover_ready_at()  # Sentinels refuse a second failover too soon after one
        wait_for(lambda at=ready: time.monotonic() >= at, 30, "the Sentinels to allow another failover")
        old = cluster.kill_master()
        record = jobs.get(job_id)  # during the failover: retried until a replica is promoted
        assert record is not None and record["status"] == "done"
        assert record["result"] == {"status": "success", "round": round_}
        assert cluster.wait_for_failover(FAILOVER_BOUND, old=old) != old
        cluster.revive(old)
        assert old != cluster.master_address()


def test_a_dropped_store_connection_reconnects_to_the_new_master(cluster: SentinelCluster) -> None:
    """A connection used again after it dropped asks the Sentinels for the master, rather than
    retrying the dead master's address (redis-py's reconnect in send_packed_command does)."""
    client = JobStore(Settings.from_env({"E2BQ_REDIS_URL": cluster.url})).redis
    connection = client.connection_pool.get_connection()
    try:
        connection.send_command("PING")
        assert connection.read_response() == "PONG"
        old = cluster.kill_master()
        new = cluster.wait_for_failover(FAILOVER_BOUND, old=old)
        connection.disconnect()  # as a command that met the dead master leaves it

        began = time.monotonic()
        connection.send_command("PING")
        assert connection.read_response() == "PONG"
        assert (connection.host, connection.port) == new
        assert time.monotonic() - began < 5
    finally:
        client.connection_pool.release(connection)
