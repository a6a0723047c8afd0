"""Where a relayed Connect stream may be ended: only between two whole messages, never twice."""

from __future__ import annotations

import json
import struct

from e2bq.sandboxd.http.streamcut import Envelopes, cut_off, is_connect_stream


def envelope(message: dict[str, object], flags: int = 0) -> bytes:
    data = json.dumps(message).encode()
    return struct.pack(">BI", flags, len(data)) + data


def test_a_stream_may_end_only_between_whole_messages_however_it_was_split() -> None:
    body = envelope({"event": {"start": {"pid": 7}}}) + envelope({"event": {"data": {"stdout": "aGk="}}})
    for split in range(len(body) + 1):
        envelopes = Envelopes()
        envelopes.feed(body[:split])
        assert envelopes.can_end() is _whole(body, split)
        envelopes.feed(body[split:])
        assert envelopes.can_end()


def _whole(body: bytes, at: int) -> bool:
    """Whether ``body[:at]`` is whole messages."""
    offset = 0
    while offset + 5 <= at:
        offset += 5 + struct.unpack_from(">I", body, offset + 1)[0]
        if offset == at:
            return True
    return at == 0


def test_a_stream_that_ended_is_not_ended_again() -> None:
    envelopes = Envelopes()
    envelopes.feed(envelope({"event": {"end": {"exited": True}}}) + envelope({}, flags=0x02))
    assert not envelopes.can_end()


def test_the_end_says_unavailable_as_e2bs_edge_does() -> None:
    data = cut_off("abc123")
    flags, size = struct.unpack_from(">BI", data)
    assert flags == 0x02 and size == len(data) - 5
    error = json.loads(data[5:])["error"]
    assert error == {
        "code": "unavailable",
        "message": "the connection to sandbox abc123 ended before the stream completed",
    }


def test_only_connect_streams_are_followed() -> None:
    assert is_connect_stream([(b"content-type", b"application/connect+json")])
    assert not is_connect_stream([(b"content-type", b"application/json")])
