"""File bytes between a client and a worker, through Redis, a few chunks at a time.

The sender pushes chunks of at most ``transfer_chunk_bytes`` onto a Redis list and waits while
``transfer_window`` chunks are unread; an empty chunk ends the stream; a failure is stored beside it.
So a 100 MB file never sits whole in any process or Redis value.

A side that waits for the other may pass ``check``: it is called about every second while waiting,
and what it raises ends the wait (a client stops waiting for a worker on a node found lost).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import redis

from ..config import Settings
from ..errors import QueueError
from .connection import connect, translates_errors
from .keys import transfer_error_key, transfer_key

_END = b""
_TTL = 600
_CHECK_EVERY = 1  # seconds (whole: a blocking read's timeout) between calls of a waiting side's ``check``


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
    def push(
        self, chunk: bytes, *, stall_timeout: float = 60.0, check: Callable[[], object] | None = None
    ) -> None:
        """Send one chunk; wait while the reader is ``transfer_window`` chunks behind."""
        deadline = time.monotonic() + stall_timeout
        checked = time.monotonic()
        while self.redis.llen(self.key) >= self.settings.transfer_window:
            if self.redis.exists(self.error_key):
                raise QueueError(self._error())
            if time.monotonic() > deadline:
                raise QueueError(f"the transfer stalled: nothing read it for {stall_timeout:g} s")
            if check is not None and time.monotonic() - checked >= _CHECK_EVERY:
                check()
                checked = time.monotonic()
            time.sleep(0.005)
        pipe = self.redis.pipeline()
        pipe.rpush(self.key, chunk)
        pipe.expire(self.key, _TTL)
        pipe.execute()

    @translates_errors
    def close(self, *, check: Callable[[], object] | None = None) -> None:
        self.push(_END, check=check)

    @translates_errors
    def fail(self, message: str) -> None:
        """Tell the reader the transfer broke off, and why."""
        pipe = self.redis.pipeline()
        pipe.set(self.error_key, message.encode(), ex=_TTL)
        pipe.rpush(self.key, _END)
        pipe.expire(self.key, _TTL)
        pipe.execute()

    @translates_errors
    def pop(self, *, timeout: float = 60.0, check: Callable[[], object] | None = None) -> bytes | None:
        """The next chunk, or None at the end. Raises QueueError if the sender failed or stalled."""
        deadline = time.monotonic() + timeout
        wait = timeout if check is None else min(timeout, _CHECK_EVERY)
        while (item := self.redis.blpop([self.key], timeout=wait)) is None:
            if check is None or time.monotonic() >= deadline:
                raise QueueError(f"the transfer stalled: no data for {timeout:g} s")
            check()
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
