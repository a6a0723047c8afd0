"""The job store's Lua scripts: each transition of a job, with its bookkeeping, in one round trip.

Values in a job's hash are JSON (``'"running"'``, ``'null'``); each script documents its KEYS and
ARGV. Used by ``e2bq.stores.jobs`` only.
"""

from __future__ import annotations

from typing import Final

from .events import EMIT_LUA
from .outbox import OUTBOX_LUA

# KEYS[1] = job hash; ARGV[1] = mode; ARGV[2..] = field, json value, ...
# Modes: "always" writes; "guarded" writes unless the job ended.
TRANSITION: Final = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
if ARGV[1] ~= 'always' and (status == '"done"' or status == '"error"' or status == '"cancelled"') then
  return -1
end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
"""

# A new job's record, its task's arguments, its event and its place in its namespace's index, in
# one round trip: KEYS = job hash, event stream, args key, namespace's jobs; ARGV[1] = ttl; ARGV[2]
# = events kept; ARGV[3] = the arguments' JSON ('' for none); ARGV[4..] = field, value. Returns 0,
# writing nothing, when the id is taken. The index drops ids older than the ttl (their records
# expired) and lives the ttl past its newest job, so it stays bounded without a sweeper.
CREATE: Final = (
    EMIT_LUA
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], ARGV[1])
if ARGV[3] ~= '' then redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[1]) end
local f = e2bq_pairs(4)
f.at = f.created_at
e2bq_emit(KEYS[2], ARGV[2], e2bq_plain(f.job_id), 'queued', f)
local created = tonumber(f.created_at)
redis.call('ZADD', KEYS[4], created, e2bq_plain(f.job_id))
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. (created - tonumber(ARGV[1])))
redis.call('EXPIRE', KEYS[4], ARGV[1])
return 1
"""
)

# A worker took the job's message (receive) or starts it (start; resume: takes it over), in one
# round trip. KEYS: job hash, cancel flag, alive key, started set, event stream; ARGV[1] = job id,
# ARGV[2] = worker, ARGV[3] = heartbeat ttl, ARGV[4] = 'receive', 'start' or 'resume', ARGV[5] =
# events kept, ARGV[6..] = the claim's field, value pairs. Receive beats and watches an existing
# job (1; 0: no job). Start and resume leave a cancelled job alone (-2); else they beat and watch
# it whatever the claim's outcome (the lanes of a map all start its job), then claim it: 1 when
# this call moved it from queued (resume: handed over) to started, else 0 or -1.
TAKE: Final = (
    EMIT_LUA
    + """
if ARGV[4] == 'receive' then
  if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
elseif redis.call('EXISTS', KEYS[2]) == 1 then
  return -2
end
redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[3])
redis.call('SADD', KEYS[4], ARGV[1])
if ARGV[4] == 'receive' then return 1 end
local job = redis.call('HMGET', KEYS[1], 'status', 'state', 'kind', 'sandbox_id', 'node')
local status = job[1]
if not status then return 0 end
if status == '"done"' or status == '"error"' or status == '"cancelled"' then return -1 end
local expected, event = '"queued"', 'started'
if ARGV[4] == 'resume' then expected, event = '"handed_over"', 'taken_over' end
if job[2] ~= expected then return -1 end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
local f = e2bq_pairs(6)
e2bq_emit(KEYS[5], ARGV[5], ARGV[1], event,
  {status = status, kind = job[3], sandbox_id = job[4], node = job[5], worker = f.worker, at = f.started_at})
return 1
"""
)

# The end transition and its bookkeeping, in one round trip: KEYS: job hash, started set, alive key,
# event stream, outbox, outbox wake-up; ARGV[1] = job id, ARGV[2] = events kept, ARGV[3] = the event
# ('ended' by finish, which stops watching the job either way; 'cancelled' by cancel), ARGV[4..] =
# field, json value, ... Ends the job unless it already ended (1 when this call ended it), and
# queues its callback and on_done task, if it has any (``e2bq.stores.outbox``).
FINISH: Final = (
    EMIT_LUA
    + OUTBOX_LUA
    + """
if ARGV[3] == 'ended' then
  redis.call('SREM', KEYS[2], ARGV[1])
  redis.call('DEL', KEYS[3])
end
local job = redis.call('HMGET', KEYS[1], 'status', 'kind', 'sandbox_id', 'node', 'worker',
  'callback_url', 'on_done')
local status = job[1]
if not status then return 0 end
if status == '"done"' or status == '"error"' or status == '"cancelled"' then return -1 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
local f = e2bq_pairs(4)
e2bq_emit(KEYS[4], ARGV[2], ARGV[1], ARGV[3],
  {status = f.status, kind = job[2], sandbox_id = job[3], node = job[4], worker = job[5], at = f.finished_at})
e2bq_outbox(KEYS[5], KEYS[6], ARGV[1], job[6], job[7], f.finished_at)
return 1
"""
)


# Hand a job whose worker is lost over to another worker: KEYS = job hash, alive key, cancel flag,
# event stream; ARGV[1] = most takeovers, ARGV[2] = how long the job waits for its new worker
# (seconds), ARGV[3] = '' or, for a worker giving its own job up, that worker's JSON name, ARGV[4]
# = events kept, ARGV[5] = now. Returns the takeover's number; 0 when the job ended, is cancelled
# or is attended (its alive key is back: its worker lives, or another reaper just handed it over;
# given up: another worker has it); -1 when takeovers are spent.
HANDOVER: Final = (
    EMIT_LUA
    + """
local job = redis.call('HMGET', KEYS[1], 'status', 'worker', 'takeovers', 'state', 'handed_from',
  'kind', 'sandbox_id', 'node', 'job_id')
if job[1] ~= '"running"' then return 0 end
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
if ARGV[3] == '' then
  if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
elseif job[2] ~= ARGV[3] then
  return 0
end
local n = tonumber(job[3] or '0') + 1
if n > tonumber(ARGV[1]) then return -1 end
local state = job[4]
if state == '"handed_over"' then state = job[5] end
redis.call('HSET', KEYS[1], 'state', '"handed_over"', 'handed_from', state, 'takeovers', tostring(n),
  'lost_seen_at', 'null', 'worker', 'null')
redis.call('SET', KEYS[2], 'handover', 'EX', ARGV[2])
e2bq_emit(KEYS[4], ARGV[4], e2bq_plain(job[9]), 'handed_over',
  {status = job[1], kind = job[6], sandbox_id = job[7], node = job[8], worker = job[2], at = ARGV[5]})
return n
"""
)
# A worker's heartbeat for a job: KEYS = job hash, alive key; ARGV[1] = the worker's JSON name,
# ARGV[2] = its name, ARGV[3] = ttl. 0 (and no beat) when the running job is another worker's.
BEAT: Final = """
local job = redis.call('HMGET', KEYS[1], 'status', 'worker', 'kind')
if job[1] == '"running"' and job[3] ~= '"map"' and job[2] ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
return 1
"""
