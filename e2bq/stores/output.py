"""A background job's whole output: its stdout and its stderr, each kept apart and in full, up to a cap.

Each stream is one Redis string (``e2bq:job:<id>:stdout`` / ``:stderr``) that every flush appends
to, and pages are read from it by byte offset with ``GETRANGE``. It was measured against a list of
fixed-size chunks (64 and 256 KiB, the last one filled in place) per stream
(``bench/output_layout_bench.py``): pages read as fast (~1 ms per MiB) and memory is the same
(1.2-1.3 bytes per byte, the allocator's size classes either way); small flushes, the common case
(a job printing now and then), cost the chunks 3.6-32x more Redis CPU, as each rewrites the last
chunk, while 2.5 MB flushes cost the string 1.5x more (0.48 against 0.32 s for 64 MiB: a long
string is copied as it grows). One APPEND is also fewer commands than LINDEX, LSET and RPUSH.

One script does a flush's writes, in one round trip: the job's short tail (``e2bq:job:<id>:output``,
what get_job_status shows), both streams, and the count of bytes kept over both in
``e2bq:job:<id>:streams``, checked against ``E2BQ_JOB_OUTPUT_MAX_BYTES``. Every key lives
``E2BQ_JOB_TTL`` seconds from its first write. All state is in Redis: any worker may append to a
job's output, one after another.

Past the cap, what does not fit is dropped and a marker line is written once into each stream that
lost some (the tail keeps following the output). A cut never splits a UTF-8 character, so the two
streams hold at most cap bytes of output together (exactly cap when the cut falls between
characters), besides the markers.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from ..config import Settings
from ..errors import InvalidInputError
from ..types import OUTPUT_STREAMS, OutputStream
from .connection import connect, translates_errors
from .keys import job_output_key, job_stream_key, job_streams_key

MAX_PAGE_BYTES = _MAX = 16 * 1024 * 1024
DEFAULT_PAGE_BYTES = 1024 * 1024
_MIN_PAGE_BYTES = 4  # the longest UTF-8 character: a page always holds one

# KEYS: tail, stdout, stderr, counts hash. ARGV: ttl, tail limit, cap, marker, tail text, stdout
# text, stderr text. A new key gets its TTL; a key that exists keeps the one it has.
_WRITE = """
local ttl, limit, cap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local function put(key, piece)
  local n = redis.call('APPEND', key, piece)
  if n == #piece then redis.call('EXPIRE', key, ttl) end
  return n
end
-- the longest prefix of s of at most n bytes that ends between two characters
local function whole(s, n)
  while n > 0 and n < #s do
    local b = string.byte(s, n + 1)
    if b < 128 or b >= 192 then break end
    n = n - 1
  end
  return n
end
local tail = ARGV[5]
if #tail > 0 and put(KEYS[1], tail) > 2 * limit then
  local all = redis.call('GET', KEYS[1])
  local drop = #all - limit
  while drop < #all do
    local b = string.byte(all, drop + 1)
    if b < 128 or b >= 192 then break end
    drop = drop + 1
  end
  redis.call('SET', KEYS[1], string.sub(all, drop + 1), 'KEEPTTL')
end
local added = #ARGV[6] + #ARGV[7]
if added == 0 then return 0 end
local kept = redis.call('HINCRBY', KEYS[4], 'kept', added)
if kept == added then redis.call('EXPIRE', KEYS[4], ttl) end
if kept <= cap then
  if #ARGV[6] > 0 then put(KEYS[2], ARGV[6]) end
  if #ARGV[7] > 0 then put(KEYS[3], ARGV[7]) end
  return 1
end
local room, used = math.max(cap - (kept - added), 0), 0
for i = 1, 2 do
  local data, key = ARGV[5 + i], KEYS[1 + i]
  if #data > 0 then
    local take = whole(data, math.min(#data, room - used))
    local piece = string.sub(data, 1, take)
    used = used + take
    if take < #data and redis.call('HSETNX', KEYS[4], 'cut:' .. i, 1) == 1 then
      local last = piece
      if last == '' then last = redis.call('GETRANGE', key, -1, -1) end
      if last ~= '' and string.sub(last, -1) ~= '\\n' then piece = piece .. '\\n' end
      piece = piece .. ARGV[4]
    end
    if #piece > 0 then put(key, piece) end
  end
end
redis.call('HSET', KEYS[4], 'kept', kept - added + used)
return 2
"""


@dataclass(frozen=True)
class OutputPage:
    """Bytes ``offset`` to ``next_offset`` of ``stream``, of ``size`` bytes so far."""

    stream: OutputStream
    offset: int
    next_offset: int
    data: str
    size: int
    truncated: bool


def cut_marker(cap: int) -> str:
    """The line that ends a stream the cap cut."""
    return f"[e2bq: output cut at {_bytes(cap)}; E2BQ_JOB_OUTPUT_MAX_BYTES sets the cap]\n"


def _bytes(count: int) -> str:
    for unit, size in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if count and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count} bytes"


class JobOutput:
    """Writes and pages a job's whole output.

    Reads need a ``client`` that does not decode replies (the default one): a range may begin or
    end inside a character. Writes work with either (a worker passes its job store's client).
    """

    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = client or connect(settings, decode=False)
        self._write = self.redis.register_script(_WRITE)

    @translates_errors
    def write(self, job_id: str, *, tail: str, stdout: str = "", stderr: str = "") -> None:
        """Append a flush, in one round trip: ``tail`` (both streams, in the order they came) to the
        job's short tail, ``stdout`` and ``stderr`` to its whole streams, within the cap."""
        if not (tail or stdout or stderr):
            return
        keys = [
            job_output_key(job_id),
            job_stream_key(job_id, "stdout"),
            job_stream_key(job_id, "stderr"),
            job_streams_key(job_id),
        ]
        cap, settings = self.settings.job_output_max_bytes, self.settings
        limits: list[int | str] = [settings.job_ttl, settings.output_tail_bytes, cap, cut_marker(cap)]
        # The tail keeps at most 2 * output_tail_bytes: the rest of a long flush need not travel.
        # As many characters hold at least as many bytes, so the tail comes out the same.
        tail = tail[-2 * settings.output_tail_bytes :]
        self._write(keys=keys, args=[*limits, tail, stdout, stderr])

    @translates_errors
    def sizes(self, job_id: str) -> dict[OutputStream, int]:
        """How many bytes each stream holds (a job taken over skips what its lost worker wrote)."""
        pipe = self.redis.pipeline(transaction=False)
        for name in OUTPUT_STREAMS:
            pipe.strlen(job_stream_key(job_id, name))
        return dict(zip(OUTPUT_STREAMS, (int(size) for size in pipe.execute()), strict=True))

    @translates_errors
    def read(self, job_id: str, stream: object, offset: object, limit: object) -> OutputPage:
        """At most ``limit`` bytes of ``stream`` from byte ``offset`` on, cut back to whole characters
        (an offset inside a character moves on to the next one). Raises InvalidInputError for a
        stream other than stdout or stderr, an offset that is not a whole number of bytes from 0 to
        the stream's size, or a limit outside 4 bytes to 16 MiB."""
        name, offset, limit = _check(stream, offset, limit)
        pipe = self.redis.pipeline(transaction=False)
        # the range first: the stream only grows, so the size read after it covers the range
        key = job_stream_key(job_id, name)
        pipe.getrange(key, offset, offset + limit)
        pipe.strlen(key)
        pipe.hlen(job_streams_key(job_id))
        raw, size, fields = pipe.execute()
        if offset > size:
            raise InvalidInputError(
                f"offset {offset} is past the end of the job's {name} ({size} bytes so far): "
                "pass an offset from 0 to its size (next_offset of the last page)"
            )
        chunk = raw if isinstance(raw, bytes) else raw.encode()  # see the class' docstring
        start = 0
        while start < len(chunk) and _continues(chunk[start]):
            start += 1  # the offset fell inside a character: begin with the next one
        end = min(len(chunk), limit)
        if end < len(chunk):
            while end > start and _continues(chunk[end]):
                end -= 1
        return OutputPage(
            stream=name,
            offset=offset + start,
            next_offset=offset + end,
            data=chunk[start:end].decode(errors="replace"),
            size=int(size),
            truncated=int(fields) > 1,  # 'kept', and a 'cut:<n>' once the cap cut a stream
        )


def _continues(byte: int) -> bool:
    """A UTF-8 continuation byte (10xxxxxx): not the start of a character."""
    return byte & 0xC0 == 0x80


def _check(stream: object, offset: object, limit: object) -> tuple[OutputStream, int, int]:
    if stream not in OUTPUT_STREAMS:
        raise InvalidInputError(f"stream must be 'stdout' or 'stderr', not {stream!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidInputError(f"offset must be a whole number of bytes >= 0, not {offset!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not _MIN_PAGE_BYTES <= limit <= _MAX:
        raise InvalidInputError(
            f"limit must be a whole number of bytes from {_MIN_PAGE_BYTES} to {_MAX} (16 MiB), not {limit!r}"
        )
    return ("stdout" if stream == "stdout" else "stderr"), offset, limit
