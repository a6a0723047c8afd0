"""Where each snapshot taken through e2bq lives: its node, so a delete or a create from it goes
to the sandbox host that keeps it (a snapshot is a folder on one host, not shared storage)."""

from __future__ import annotations

import json
from typing import cast

import redis

from ..config import Settings
from ..types import SnapshotInfo
from .connection import connect, translates_errors
from .keys import SNAPSHOTS


class SnapshotStore:
    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = client or connect(settings)

    @translates_errors
    def add(self, info: SnapshotInfo) -> None:
        self.redis.hset(SNAPSHOTS, info["snapshot_id"], json.dumps(info))

    @translates_errors
    def get(self, snapshot_id: str) -> SnapshotInfo | None:
        raw = self.redis.hget(SNAPSHOTS, snapshot_id)
        return cast(SnapshotInfo, json.loads(raw)) if raw else None

    @translates_errors
    def remove(self, snapshot_id: str) -> None:
        self.redis.hdel(SNAPSHOTS, snapshot_id)
