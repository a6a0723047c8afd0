"""The sandbox registry: a namespace's sandboxes and default; reads never write."""

from __future__ import annotations

import time

import redis

from e2bq.config import Settings
from e2bq.stores.keys import namespace_sandboxes_key, shape_live_key
from e2bq.stores.nodes import NodeStore
from e2bq.stores.registry import DefaultSandbox, Registry
from e2bq.types import NodeRecord, SandboxEntry


def entry(settings: Settings, sandbox_id: str, *, lifetime: float = 300, age: float = 0) -> SandboxEntry:
    now = time.time()
    return {
        "sandbox_id": sandbox_id,
        "provider": "local",
        "namespace": settings.namespace,
        "template": "code-interpreter-v1",
        "metadata": {"owner": "test"},
        "created_at": now - age,
        "expires_at": now - age + lifetime,
        "is_default": False,
    }


def test_a_namespace_lists_its_live_sandboxes_oldest_first(settings: Settings) -> None:
    registry = Registry(settings)
    registry.add(entry(settings, "young", age=1))
    registry.add(entry(settings, "old", age=5))
    registry.set_default(settings.namespace, "young")
    listed = registry.list(settings.namespace)
    assert [e["sandbox_id"] for e in listed] == ["old", "young"]
    assert [e["is_default"] for e in listed] == [False, True]
    assert registry.list("another-namespace") == []


def test_an_expired_sandbox_is_gone_for_readers_who_change_nothing(
    settings: Settings, raw: redis.Redis
) -> None:
    registry = Registry(settings)
    registry.add(entry(settings, "live"))
    registry.add(entry(settings, "expired", lifetime=1, age=2))
    members = raw.smembers(namespace_sandboxes_key(settings.namespace))
    assert registry.get("expired") is None
    assert [e["sandbox_id"] for e in registry.list(settings.namespace)] == ["live"]
    assert raw.smembers(namespace_sandboxes_key(settings.namespace)) == members == {"expired", "live"}
    registry.add(entry(settings, "next"))  # the namespace's next add forgets it
    assert raw.smembers(namespace_sandboxes_key(settings.namespace)) == {"live", "next"}


def test_a_shut_down_default_leaves_no_default_but_a_vanished_one_stays_pointed_at(
    settings: Settings, raw: redis.Redis
) -> None:
    registry = Registry(settings)
    for sandbox_id in ("a", "b"):
        registry.add(entry(settings, sandbox_id))
    registry.set_default(settings.namespace, "a")
    registry.remove("a")  # vanished (expired, its host restarted): the toolkit replaces it on next use
    assert registry.default(settings.namespace) == "a"
    assert registry.get("a") is None
    registry.set_default(settings.namespace, "b")
    registry.remove("b", shut_down=True)
    assert registry.default(settings.namespace) is None
    assert raw.zcard(shape_live_key("local")) == 0


def test_extending_a_sandbox_moves_its_expiry(settings: Settings) -> None:
    registry = Registry(settings)
    registry.add(entry(settings, "s", lifetime=30))
    later = time.time() + 600
    registry.extend("s", later)
    assert registry.expires_at("s") == later
    extended = registry.get("s")
    assert extended is not None and extended["expires_at"] == later


def test_the_default_sandbox_is_read_with_its_node_in_one_round_trip(settings: Settings) -> None:
    registry = Registry(settings)
    nodes = NodeStore(settings, registry.redis)
    assert registry.default_sandbox(settings.namespace, nodes.key) is None
    heartbeat: NodeRecord = {
        "node": "n1", "url": "http://n1:49999", "capacity": 4, "live": 1, "free": 3, "seen_at": time.time(),
    }
    nodes.beat(heartbeat, sampled_at=time.time())
    registry.add({**entry(settings, "on-n1"), "node": "n1", "node_started_at": 12.5})
    registry.set_default(settings.namespace, "on-n1")
    assert registry.default_sandbox(settings.namespace, nodes.key) == DefaultSandbox(
        sandbox_id="on-n1", live=True, node_started_at=12.5, heartbeat=heartbeat
    )

    registry.add(entry(settings, "no-node"))  # E2B's cloud: no node, no heartbeat
    registry.set_default(settings.namespace, "no-node")
    assert registry.default_sandbox(settings.namespace, nodes.key) == DefaultSandbox(
        sandbox_id="no-node", live=True, node_started_at=None, heartbeat=None
    )

    registry.add(entry(settings, "expired", lifetime=10, age=20))
    registry.set_default(settings.namespace, "expired")
    found = registry.default_sandbox(settings.namespace, nodes.key)
    assert found is not None and not found.live

    registry.remove("no-node")  # it vanished: the pointer stays, the sandbox is not live
    registry.set_default(settings.namespace, "no-node")
    assert registry.default_sandbox(settings.namespace, nodes.key) == DefaultSandbox(
        sandbox_id="no-node", live=False, node_started_at=None, heartbeat=None
    )


def test_a_paused_sandbox_does_not_expire_and_resumes_with_the_time_it_had_left(
    settings: Settings, raw: redis.Redis
) -> None:
    registry = Registry(settings)
    registry.add(entry(settings, "p", lifetime=120, age=1))
    registry.add(entry(settings, "unmanaged-elsewhere"))
    registry.set_default(settings.namespace, "p")
    paused_at = time.time()
    registry.mark_paused("p", paused_at)
    registry.mark_paused("not-managed", paused_at)  # nothing to record
    assert raw.ttl("e2bq:sandbox:p") == -1  # no expiry while paused
    assert raw.exists("e2bq:sandbox:not-managed") == 0
    assert registry.is_paused("p") and not registry.is_paused("unmanaged-elsewhere")
    paused = registry.get("p")
    assert paused is not None and paused["paused_at"] == paused_at
    assert paused["resume_timeout"] == 119 or paused["resume_timeout"] == 118
    raw.hset("e2bq:sandbox:p", "expires_at", str(time.time() - 10))  # its timeout passed, by the clock
    assert registry.get("p") is not None
    assert "p" in [e["sandbox_id"] for e in registry.list(settings.namespace)]
    default = registry.default_sandbox(settings.namespace, "no-nodes")
    assert default is not None and default.live
    registry.add(entry(settings, "next"))  # forgets expired sandboxes, not a paused one
    registry.extend("p", time.time() + 5)  # a job's keep-alive: no expiry for a paused record
    assert raw.ttl("e2bq:sandbox:p") == -1
    assert "p" in raw.smembers(namespace_sandboxes_key(settings.namespace))

    later = time.time() + 119
    assert default.paused
    registry.mark_running("p", later, host_started_at=4242.0)  # resumed by a later run of its host
    running = registry.get("p")
    assert running is not None and running["expires_at"] == later
    assert running["node_started_at"] == 4242.0
    assert "paused_at" not in running and not registry.is_paused("p")
    assert 0 < raw.ttl("e2bq:sandbox:p") <= 119 + 61
