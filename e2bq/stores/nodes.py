"""The nodes of a local cluster: their heartbeats with capacity, placement of creates, lost nodes.

A node is one ``e2bq sandboxd`` and the workers that reach it (``e2bq worker --node NAME``). Every
worker of a node publishes the node's heartbeat every couple of seconds: its sandbox host's
capacity, live sandboxes and free slots, as the host itself reports them. A node whose heartbeat is
older than ``E2BQ_NODE_TIMEOUT`` seconds is lost: its host or all of its workers are gone.

Placement is one Lua script: among the live nodes it takes the one with the most free slots (less
the creates already placed there and not yet counted by a heartbeat) and reserves a slot, so two
clients never both take a node's last slot, and a full node never gets a create while another has
room. A reservation is *pending* until the worker that makes the sandbox *settles* it; a settled
one counts until the next heartbeat, whose numbers include the sandbox.

Reading (:meth:`NodeStore.get`, :meth:`NodeStore.list`) never changes anything.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import cast

import redis

from ..config import Settings
from ..types import NodeInfo, NodeRecord, SandboxEntry, SandboxState
from .connection import connect, text, translates_errors
from .keys import cluster_node_prefix, cluster_nodes_key

FORGET_AFTER = 86_400  # seconds after its last heartbeat a lost node is no longer listed
PLACEMENT_TTL = 180  # seconds a pending reservation holds a slot if its create never settles it

# KEYS[1] = nodes hash. ARGV: now, node timeout, reservation, its expiry, node key prefix, forget after,
# the one node to consider ('' for any). Returns {node, url} of the node reserved, or false when no
# live node (or not that one) has a free slot.
_PLACE = """
local now, timeout, forget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[6])
local best, best_url, best_free = nil, nil, 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local name, record = fields[i], cjson.decode(fields[i + 1])
  local age = now - tonumber(record.seen_at)
  if age > forget then
    redis.call('HDEL', KEYS[1], name)
  elseif age <= timeout and (ARGV[7] == '' or ARGV[7] == name) then
    local pending, settled = ARGV[5] .. name .. ':pending', ARGV[5] .. name .. ':settled'
    redis.call('ZREMRANGEBYSCORE', pending, '-inf', now)
    local free = tonumber(record.free) - redis.call('ZCARD', pending) - redis.call('ZCARD', settled)
    if free > best_free or (free == best_free and best ~= nil and name < best) then
      best, best_url, best_free = name, record.url, free
    end
  end
end
if best == nil then return false end
redis.call('ZADD', ARGV[5] .. best .. ':pending', ARGV[4], ARGV[3])
redis.call('EXPIRE', ARGV[5] .. best .. ':pending', 3600)
return {best, best_url}
"""


@dataclass(frozen=True)
class Placement:
    """A slot reserved on ``node`` for one create; the create settles it."""

    node: str
    url: str
    reservation: str


class NodeStore:
    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = client or connect(settings)
        self.key = cluster_nodes_key(settings.queue)
        self.prefix = cluster_node_prefix(settings.queue)
        self._place = self.redis.register_script(_PLACE)

    # -- the workers' side ----------------------------------------------------------------------

    @translates_errors
    def beat(self, record: NodeRecord, sampled_at: float) -> None:
        """Publish a node's heartbeat; ``sampled_at`` is when its host was asked, so creates
        settled before then (which its numbers include) stop counting."""
        settled = f"{self.prefix}{record['node']}:settled"
        pipe = self.redis.pipeline()
        pipe.hset(self.key, record["node"], json.dumps(record))
        pipe.zremrangebyscore(settled, "-inf", sampled_at)
        pipe.execute()

    @translates_errors
    def settle(self, placement: Placement, *, made: bool) -> None:
        """The create placed so is over: its slot counts as taken until the next heartbeat
        (``made``), or is free again."""
        pipe = self.redis.pipeline()
        pipe.zrem(f"{self.prefix}{placement.node}:pending", placement.reservation)
        if made:
            settled = f"{self.prefix}{placement.node}:settled"
            pipe.zadd(settled, {placement.reservation: time.time()})
            pipe.expire(settled, 3600)
        pipe.execute()

    # -- the clients' side ----------------------------------------------------------------------

    @translates_errors
    def place(self, node: str | None = None) -> Placement | None:
        """Reserve a slot on the live node with the most free slots (or on ``node`` only, as a
        worker does for a sandbox of its own node); None when none has one."""
        reservation = uuid.uuid4().hex
        now = time.time()
        args: list[str | float] = [
            now, self.settings.node_timeout, reservation, now + PLACEMENT_TTL, self.prefix, FORGET_AFTER,
            node or "",
        ]
        chosen = self._place(keys=[self.key], args=args)
        if not chosen:
            return None
        node, url = (text(part) for part in chosen)
        return Placement(node=node, url=url, reservation=reservation)

    @translates_errors
    def any(self) -> bool:
        """Whether any node ever beat here (a local cluster), lost ones included."""
        return bool(self.redis.hlen(self.key))

    @translates_errors
    def get(self, node: str) -> NodeInfo | None:
        """The node as it stands; None when no worker ever published it (or it was forgotten)."""
        raw = self.redis.hget(self.key, node)
        return None if raw is None else self._info(json.loads(raw))

    @translates_errors
    def list(self) -> list[NodeInfo]:
        """Every node, by name."""
        raw = self.redis.hgetall(self.key)
        return [self._info(json.loads(raw[name])) for name in sorted(raw)]

    @translates_errors
    def lost(self, node: str) -> NodeInfo | None:
        """The node's record if it is lost; None while it beats (or was never heard of). One
        round trip."""
        record = self.record(node)
        if record is None or not self.is_lost(record):
            return None
        return self.info(record, placed=0)

    @translates_errors
    def record(self, node: str) -> NodeRecord | None:
        """The node's last heartbeat as published (None: never heard of, or forgotten)."""
        raw = self.redis.hget(self.key, node)
        return None if raw is None else cast(NodeRecord, json.loads(raw))

    def is_lost(self, record: NodeRecord) -> bool:
        """Whether the node that published ``record`` is lost (its heartbeat is too old)."""
        return time.time() - record["seen_at"] > self.settings.node_timeout

    def info(self, record: NodeRecord, *, placed: int) -> NodeInfo:
        """The node as a heartbeat shows it, with ``placed`` creates pending there."""
        state = "lost" if self.is_lost(record) else "live"
        return cast(NodeInfo, {**record, "state": state, "placed": placed})

    def _info(self, record: NodeRecord) -> NodeInfo:
        return self.info(record, placed=self.redis.zcard(f"{self.prefix}{record['node']}:pending"))


def sandbox_state(entry: SandboxEntry, node: NodeInfo | None) -> SandboxState:
    """``lost`` when the sandbox's node is lost, or its host restarted since it made the sandbox
    (a heartbeat older than the sandbox does not count: its host may have restarted since);
    ``paused`` while it is paused through e2bq, across restarts of its host too (sandboxd keeps
    paused sandboxes on disk: a resume says if this one was not kept)."""
    state = made_state(entry.get("node_started_at"), node)
    live = node is None or node["state"] == "live"
    return "paused" if live and entry.get("paused_at") else state


def made_state(made_by: float | None, node: NodeInfo | None) -> SandboxState:
    """The state of a sandbox made by the run of its host that began at ``made_by`` (see
    :func:`sandbox_state`)."""
    if node is None:
        return "running"
    if node["state"] == "lost":
        return "lost"
    current = node.get("started_at")
    return "lost" if made_by and current and made_by < current else "running"


def lost_message(info: NodeInfo) -> str:
    """Why a call to a sandbox on a lost node fails, and what to do."""
    silent = time.time() - info["seen_at"]
    return (
        f"node {info['node']} is lost (no heartbeat for {silent:.0f} s; E2BQ_NODE_TIMEOUT is the bound): "
        "its sandbox host or all of its workers stopped, so its sandboxes cannot be reached; "
        "create a new sandbox (it lands on a live node)"
    )
