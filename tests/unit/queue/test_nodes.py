"""The node store: heartbeats, placement by free slots, lost nodes, and the queues of a node."""

from __future__ import annotations

import collections
import dataclasses
import json
import time

import pytest
import redis

from e2bq.client.routing import Router
from e2bq.config import Settings
from e2bq.errors import ConfigurationError, NodeLostError
from e2bq.queues import check_node_name, queue_for, worker_queues
from e2bq.stores.nodes import FORGET_AFTER, NodeStore, lost_message, sandbox_state
from e2bq.stores.registry import Registry
from e2bq.types import NodeRecord, SandboxEntry


def beat(store: NodeStore, node: str, *, capacity: int = 10, live: int = 0, ago: float = 0.0) -> None:
    seen = time.time() - ago
    record: NodeRecord = {
        "node": node, "url": f"http://{node}:49999", "capacity": capacity, "live": live,
        "free": capacity - live, "seen_at": seen,
    }
    store.beat(record, sampled_at=seen)


def placed_on(store: NodeStore) -> str | None:
    placement = store.place()
    return placement.node if placement else None


def test_creates_spread_evenly_over_equal_nodes(settings: Settings) -> None:
    store = NodeStore(settings)
    beat(store, "a")
    beat(store, "b")
    placed = collections.Counter(placed_on(store) for _ in range(10))
    assert placed == {"a": 5, "b": 5}


def test_a_full_node_never_gets_a_create_while_another_has_room(settings: Settings) -> None:
    store = NodeStore(settings)
    beat(store, "full", capacity=4, live=4)
    beat(store, "roomy", capacity=3, live=0)
    chosen = [store.place() for _ in range(4)]
    assert [p.node if p else None for p in chosen] == ["roomy", "roomy", "roomy", None]


def test_a_settled_create_counts_until_a_heartbeat_includes_it(settings: Settings) -> None:
    store = NodeStore(settings)
    beat(store, "a", capacity=1)
    placement = store.place()
    assert placement is not None and store.place() is None
    store.settle(placement, made=True)
    assert store.place() is None  # the host's numbers do not include the sandbox yet
    beat(store, "a", capacity=1, live=1)
    assert store.place() is None  # now they do
    beat(store, "a", capacity=1, live=0)  # it was killed
    assert store.place() is not None


def test_a_failed_create_frees_its_slot_at_once(settings: Settings) -> None:
    store = NodeStore(settings)
    beat(store, "a", capacity=1)
    placement = store.place()
    assert placement is not None
    store.settle(placement, made=False)
    assert store.place() is not None


def test_a_silent_node_is_lost_and_gets_no_creates(settings: Settings) -> None:
    store = NodeStore(dataclasses.replace(settings, node_timeout=5))
    beat(store, "gone", ago=6)
    beat(store, "alive", ago=1)
    assert {n["node"]: n["state"] for n in store.list()} == {"alive": "live", "gone": "lost"}
    assert store.lost("alive") is None and store.lost("never-heard-of") is None
    lost = store.lost("gone")
    assert lost is not None and "node gone is lost" in lost_message(lost)
    assert {placed_on(store) for _ in range(3)} == {"alive"}


def test_a_node_that_comes_back_takes_creates_again(settings: Settings) -> None:
    store = NodeStore(dataclasses.replace(settings, node_timeout=5))
    beat(store, "a", ago=60)
    assert store.place() is None
    beat(store, "a")
    placement = store.place()
    assert placement is not None and placement.node == "a" and placement.url == "http://a:49999"


def test_a_node_silent_for_a_day_is_forgotten(settings: Settings) -> None:
    store = NodeStore(settings)
    beat(store, "old", ago=FORGET_AFTER + 1)
    assert store.any()
    assert store.place() is None
    assert not store.any()


def test_clusters_with_other_queues_do_not_see_each_other(settings: Settings) -> None:
    beat(NodeStore(settings), "a")
    other = NodeStore(dataclasses.replace(settings, queue="other"))
    assert not other.any() and other.place() is None


def test_node_queues_and_what_each_worker_takes() -> None:
    assert queue_for("e2bq", None) == "e2bq"
    assert queue_for("e2bq", "n1", batch=True) == "e2bq.node.n1.batch"
    assert worker_queues("e2bq", "n1") == ["e2bq", "e2bq.node.n1", "e2bq.batch", "e2bq.node.n1.batch"]
    assert worker_queues("e2bq", "n1", "interactive") == ["e2bq", "e2bq.node.n1"]
    assert worker_queues("e2bq", None, "batch") == ["e2bq.batch"]


@pytest.mark.parametrize("name", ["", "a b", "-x", "n" * 64, "a/b"])
def test_a_node_name_that_cannot_name_a_queue_is_refused(name: str) -> None:
    with pytest.raises(ConfigurationError, match="node name"):
        check_node_name(name)


def test_worker_serves_is_checked() -> None:
    assert Settings.from_env({"E2BQ_WORKER_SERVES": "batch"}).worker_serves == "batch"
    with pytest.raises(ConfigurationError, match="E2BQ_WORKER_SERVES"):
        Settings.from_env({"E2BQ_WORKER_SERVES": "everything"})




def test_the_nodes_command_lists_each_node(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from e2bq.cli import cli

    store = NodeStore(dataclasses.replace(settings, node_timeout=5))
    beat(store, "rack-1", capacity=8, live=3)
    beat(store, "rack-2", ago=60)
    monkeypatch.setenv("E2BQ_REDIS_URL", settings.redis_url)
    monkeypatch.setenv("E2BQ_NODE_TIMEOUT", "5")
    table = CliRunner().invoke(cli, ["nodes"])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[1].split()[:5] == ["rack-1", "live", "3", "5", "8"]
    assert lines[2].split()[:2] == ["rack-2", "lost"]
    as_json = CliRunner().invoke(cli, ["nodes", "--json"])
    assert [json.loads(line)["node"] for line in as_json.output.splitlines()] == ["rack-1", "rack-2"]


def test_a_create_goes_to_the_node_with_the_most_free_slots(settings: Settings) -> None:
    store = NodeStore(settings)
    beat(store, "a", live=9)
    beat(store, "b", live=7)
    placed = [placed_on(store) for _ in range(4)]
    assert placed == ["b", "b", "a", "b"]
    assert store.place() is None  # every slot is reserved


def test_a_named_node_only_is_considered(settings: Settings) -> None:
    store = NodeStore(settings)
    beat(store, "a", live=9)
    beat(store, "b", live=5)
    first = store.place("a")
    assert first is not None and (first.node, first.url) == ("a", "http://a:49999")
    assert store.place("a") is None  # its one slot is taken, though b has room
    assert store.place("c") is None  # never heard of


def test_a_sandbox_is_lost_with_its_node_or_when_its_host_restarted(settings: Settings) -> None:
    store = NodeStore(dataclasses.replace(settings, node_timeout=5))
    record: NodeRecord = {
        "node": "a", "url": "http://a", "capacity": 2, "live": 1, "free": 1, "seen_at": time.time(),
        "started_at": 2000.0,
    }
    store.beat(record, sampled_at=time.time())
    entry: SandboxEntry = {
        "sandbox_id": "s", "provider": "local", "namespace": "ns", "template": "t", "metadata": {},
        "created_at": 0.0, "expires_at": 0.0, "is_default": False, "node": "a", "node_started_at": 2000.0,
    }
    assert sandbox_state(entry, store.get("a")) == "running"
    assert sandbox_state({**entry, "node_started_at": 1000.0}, store.get("a")) == "lost"  # host restarted
    assert sandbox_state({**entry, "node_started_at": 3000.0}, store.get("a")) == "running"  # old beat
    assert sandbox_state({**entry, "node_started_at": None}, store.get("a")) == "running"  # not dated
    assert sandbox_state(entry, None) == "running"  # E2B's cloud, or a node never heard of
    paused: SandboxEntry = {**entry, "node_started_at": 1000.0, "paused_at": 1500.0}
    assert sandbox_state(paused, store.get("a")) == "paused"  # kept on disk across its host's restart
    store.beat({**record, "seen_at": time.time() - 6}, sampled_at=time.time())
    assert sandbox_state(entry, store.get("a")) == "lost"
    assert sandbox_state(paused, store.get("a")) == "lost"  # its node lost: gone with it


def test_the_router_sees_a_node_lost_when_its_last_heartbeat_is_too_old_and_reads_it_no_sooner(
    settings: Settings, raw: redis.Redis
) -> None:
    settings = dataclasses.replace(settings, node_timeout=5)
    registry = Registry(settings)
    router = Router(settings, registry, NodeStore(settings, registry.redis))
    beat(NodeStore(settings), "a", ago=4.5)  # lost in half a second, unless it beats again
    reads = raw.info("commandstats").get("cmdstat_hget", {}).get("calls", 0)
    for _ in range(10):
        assert router.to_node("a").queue == queue_for(settings.queue, "a")
    assert raw.info("commandstats")["cmdstat_hget"]["calls"] - reads == 1  # one read, kept until then
    time.sleep(0.6)
    with pytest.raises(NodeLostError, match="node a is lost"):
        router.to_node("a")
    beat(NodeStore(settings), "a")  # it came back
    assert router.to_node("a").node == "a"
