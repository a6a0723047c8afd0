"""How to keep a job's whole output in Redis: one string per stream against a list of fixed-size chunks.

A private redis-server; the same bytes written both ways in the same run, flush by flush, each
flush one script (as a worker writes), then read back in 1 MiB pages:
- one string per stream: APPEND, and GETRANGE for a page (what ``e2bq.stores.output`` does);
- a list of chunks of C bytes per stream: the last chunk filled in place (LINDEX, LSET), then new
  chunks pushed, and a page is the LRANGE of its chunks, joined and cut by the client.
Reported: Redis CPU and wall time to write, bytes of Redis memory per byte kept, time per page.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from common import header, row

from e2bq.launch import start_redis

STRING_WRITE = """
local n = redis.call('APPEND', KEYS[1], ARGV[1])
return n + redis.call('STRLEN', KEYS[2])
"""
CHUNKS_WRITE = """
local size, data = tonumber(ARGV[2]), ARGV[1]
local length = tonumber(redis.call('HGET', KEYS[2], 'length') or '0')
local used, pos = length % size, 1
if used > 0 then
  local take = math.min(size - used, #data)
  redis.call('LSET', KEYS[1], -1, redis.call('LINDEX', KEYS[1], -1) .. string.sub(data, 1, take))
  pos = take + 1
end
while pos <= #data do
  redis.call('RPUSH', KEYS[1], string.sub(data, pos, pos + size - 1))
  pos = pos + size
end
redis.call('HSET', KEYS[2], 'length', length + #data)
return length + #data
"""
PAGE = 1024 * 1024


def measure(raw: Any, layout: str, flush: int, total: int, chunk: int) -> tuple[float, float, float, float]:
    """(Redis CPU s, wall s, memory per byte, ms per page) of writing ``total`` bytes in flushes of
    ``flush`` bytes, then reading them back."""
    raw.flushall()
    write = raw.register_script(STRING_WRITE if layout == "string" else CHUNKS_WRITE)
    data = b"x" * (flush - 1) + b"\n"
    memory, cpu, began = used_memory(raw), redis_cpu(raw), time.perf_counter()
    written = 0
    while written < total:
        if layout == "string":
            write(keys=["out", "err"], args=[data])
        else:
            write(keys=["out", "counts"], args=[data, chunk])
        written += len(data)
    wall, cpu, memory = time.perf_counter() - began, redis_cpu(raw) - cpu, used_memory(raw) - memory
    began, offset, pages = time.perf_counter(), 0, 0
    while offset < written:
        if layout == "string":
            page = raw.getrange("out", offset, offset + PAGE - 1)
        else:
            first, last = offset // chunk, (offset + PAGE - 1) // chunk
            start = offset - first * chunk
            page = b"".join(raw.lrange("out", first, last))[start : start + PAGE]
        offset, pages = offset + len(page), pages + 1
    return cpu, wall, memory / written, (time.perf_counter() - began) / pages * 1000


def used_memory(raw: Any) -> int:
    return int(raw.info("memory")["used_memory"])


def redis_cpu(raw: Any) -> float:
    info = raw.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=64)
    args = parser.parse_args()
    import redis

    with tempfile.TemporaryDirectory() as tmp, start_redis(Path(tmp)) as server:
        raw = redis.Redis.from_url(server.url)
        header("a job's whole output in Redis: one string per stream vs fixed-size chunks (same run)")
        for flush, total in ((2_500_000, args.megabytes << 20), (4096, args.megabytes << 20), (200, 8 << 20)):
            string = measure(raw, "string", flush, total, 0)
            for chunk in (64 << 10, 256 << 10):
                chunks = measure(raw, "chunks", flush, total, chunk)
                row(
                    f"{total >> 20} MiB in {flush:,}-byte flushes: string vs {chunk >> 10} KiB chunks",
                    f"string: Redis CPU {string[0]:.2f} s, wall {string[1]:.2f} s, "
                    f"{string[2]:.2f} bytes/byte, {string[3]:.2f} ms/page",
                    f"chunks: Redis CPU {chunks[0]:.2f} s, wall {chunks[1]:.2f} s, "
                    f"{chunks[2]:.2f} bytes/byte, {chunks[3]:.2f} ms/page",
                )


if __name__ == "__main__":
    main()
