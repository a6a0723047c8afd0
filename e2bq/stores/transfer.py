"""File bytes between a client and a worker, through Redis, a few chunks at a time.

The sender pushes chunks of at most ``transfer_chunk_bytes`` onto a Redis list and waits while
``transfer_window`` chunks are unread; an empty chunk ends the stream; a failure is stored beside it.
So a 100 MB file never sits whole in any process or Redis value.
"""

from __future__ import annotations

import time
import uuid

import redis

from ..config import Settings
from ..errors import QueueError
from .connection import connect, translates_errors
from .keys import transfer_error_key, transfer_key

_END = b""
_TTL = 600


def new_transfer_id() -> str:
    return uuid.uuid4().hex


class ChunkPipe:
    def __init__(
        self, settings: Settings, transfer_id: str, client: redis.Redis | None = None
    ) -> None:
        self.settings = settings
        self.key = transfer_key(transfer_id)
        self.error_key = transfer_error_key(transfer_id)
        self.redis = client or connect(settings, decode=False)

    @translates_errors
    def push(self, chunk: bytes, *, stall_timeout: float = 60.0) -> None:
        """Send one chunk; wait while the reader is ``transfer_window`` chunks behind."""
        deadline = time.monotonic() + stall_timeout
        while self.redis.llen(self.key) >= self.settings.transfer_window:
            if self.redis.exists(self.error_key):
                raise QueueError(self._error())
            if time.monotonic() > deadline:
                raise QueueError(f"the transfer stalled: nothing read it for {stall_timeout:g} s")
            time.sleep(0.005)
        pipe = self.redis.pipeline()
        pipe.rpush(self.key, chunk)
        pipe.expire(self.key, _TTL)
        pipe.execute()

    @translates_errors
    def close(self) -> None:
        self.push(_END)

    @translates_errors
    def fail(self, message: str) -> None:
        """Tell the reader the transfer broke off, and why."""
        pipe = self.redis.pipeline()
        pipe.set(self.error_key, message.encode(), ex=_TTL)
        pipe.rpush(self.key, _END)
        pipe.expire(self.key, _TTL)
        pipe.execute()

    @translates_errors
    def pop(self, *, timeout: float = 60.0) -> bytes | None:
        """The next chunk, or None at the end. Raises QueueError if the sender failed or stalled."""
        item = self.redis.blpop([self.key], timeout=timeout)
        if item is None:
            raise QueueError(f"the transfer stalled: no data for {timeout:g} s")
        chunk = item[1]
        if chunk == _END:
            if self.redis.exists(self.error_key):
                raise QueueError(self._error())
            return None
        return chunk if isinstance(chunk, bytes) else chunk.encode()

    def _error(self) -> str:
        raw = self.redis.get(self.error_key)
        if isinstance(raw, bytes):
            return raw.decode(errors="replace")
        return raw or "the transfer failed"

    @translates_errors
    def discard(self) -> None:
        self.redis.delete(self.key, self.error_key)
