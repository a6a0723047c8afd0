"""Ending a Connect stream the sandbox cut off, the way E2B's edge ends it.

When a sandbox is killed (or its agent dies) under a running command or PTY, the agent's answer
breaks off mid-stream. E2B's edge then ends the caller's stream properly, with an end-of-stream
message carrying ``unavailable`` and "the connection to sandbox <id> ended before the stream
completed"; the SDK, seeing that, asks the sandbox's health and raises SandboxNotRunningException
when it is gone (or SandboxUnreachableException when it is not). sandboxd does the same whenever
what it relayed so far ends between two messages, so the SDK follows the same path, the same
exceptions with the same messages, and never sees a broken body.
"""

from __future__ import annotations

import json
import struct

from .upstream import Headers

CONNECT_STREAM = b"application/connect+json"
_END_STREAM = 0x02
_HEADER = 5  # an envelope's flags byte and its 4-byte big-endian length


def is_connect_stream(headers: Headers) -> bool:
    return any(k.lower() == b"content-type" and v.startswith(CONNECT_STREAM) for k, v in headers)


class Envelopes:
    """Follows a Connect stream's enveloped messages as its body goes by, to tell whether what
    went by ends at a message boundary and whether the end-of-stream message was among it."""

    def __init__(self) -> None:
        self._header = bytearray()
        self._left = 0  # bytes of the current message still to come
        self.ended = False

    def feed(self, data: bytes) -> None:
        at, size = 0, len(data)
        while at < size:
            if self._left:
                taken = min(self._left, size - at)
                self._left -= taken
                at += taken
                continue
            need = _HEADER - len(self._header)
            self._header += data[at : at + need]
            at += need
            if len(self._header) == _HEADER:
                flags, self._left = struct.unpack(">BI", self._header)
                self._header.clear()
                self.ended = self.ended or bool(flags & _END_STREAM)

    def can_end(self) -> bool:
        """Whether an end-of-stream message may follow: the last message went by whole, and it
        was not the end already."""
        return not self._header and not self._left and not self.ended


def cut_off(sandbox_id: str) -> bytes:
    """The end-of-stream message E2B's edge sends when the sandbox's side of a stream breaks."""
    error = {
        "code": "unavailable",
        "message": f"the connection to sandbox {sandbox_id} ended before the stream completed",
    }
    data = json.dumps({"error": error}, separators=(",", ":")).encode()
    return struct.pack(">BI", _END_STREAM, len(data)) + data
