//! The board's Lua scripts: a listing that reads each job's details in the same step, and
//! the operators' actions, each checking the job's state and moving it at once.

use std::sync::LazyLock;

use redis::Script;

/// The jobs of one state with what the board shows of each.
pub(super) static LIST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS: the state's sorted set, attempts, errors, failed_at, due_at, dead_reasons
-- ARGV: offset, limit, state
local rows = redis.call('ZRANGE', KEYS[1], ARGV[1], tonumber(ARGV[1]) + tonumber(ARGV[2]) - 1, 'WITHSCORES')
local out = {}
for i = 1, #rows, 2 do
  local id, score = rows[i], rows[i + 1]
  local due = score
  if ARGV[3] ~= 'delayed' then due = redis.call('HGET', KEYS[5], id) or '' end
  local failed = redis.call('HGET', KEYS[4], id)
  if not failed and ARGV[3] == 'failed' then failed = score end
  table.insert(out, id)
  table.insert(out, due)
  table.insert(out, redis.call('HGET', KEYS[2], id) or '0')
  table.insert(out, redis.call('HGET', KEYS[3], id) or redis.call('HGET', KEYS[6], id) or '')
  table.insert(out, failed or '')
end
return out
",
    )
});

/// What every action script starts with: the job's state, and Redis' time.
macro_rules! action_script {
    ($body:literal) => {
        concat!(
            r"
-- KEYS: due, leased, dead, done:<id>, jobs, attempts, errors, failed_at, due_at,
--       dead_reasons, tokens
-- ARGV: id, wake channel, done ttl ms
-- Returns {1, due ms} when done, {0, state} when the job is in another state.
local function state(id)
  if redis.call('ZSCORE', KEYS[1], id) then return 'delayed' end
  if redis.call('ZSCORE', KEYS[2], id) then return 'active' end
  if redis.call('ZSCORE', KEYS[3], id) then return 'failed' end
  local done = redis.call('GET', KEYS[4])
  if done == 'discarded' then return 'discarded' end
  if done then return 'completed' end
  return 'unknown'
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local s = state(ARGV[1])
",
            $body
        )
    };
}

/// A failed job is due again now, with its attempts reset (a full set of retries, as a new
/// job gets) and its last error kept.
pub(super) static RETRY_FAILED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(action_script!(
        r"
if s ~= 'failed' then return {0, s} end
redis.call('ZREM', KEYS[3], ARGV[1])
-- A job that died before 'errors' existed: its reason becomes its last error.
local old = redis.call('HGET', KEYS[10], ARGV[1])
if old and redis.call('HEXISTS', KEYS[7], ARGV[1]) == 0 then
  redis.call('HSET', KEYS[7], ARGV[1], old)
end
redis.call('HDEL', KEYS[10], ARGV[1])
redis.call('HDEL', KEYS[6], ARGV[1])
redis.call('HDEL', KEYS[9], ARGV[1])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PUBLISH', ARGV[2], now)
return {1, now}
"
    ))
});

/// A delayed job is due now (one already overdue keeps its due time).
pub(super) static PROMOTE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(action_script!(
        r"
if s ~= 'delayed' then return {0, s} end
local at = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if at > now then
  redis.call('ZADD', KEYS[1], now, ARGV[1])
  at = now
end
redis.call('PUBLISH', ARGV[2], at)
return {1, at}
"
    ))
});

/// A failed job is forgotten; its tombstone keeps a redelivered `order.created` from
/// scheduling it again.
pub(super) static DISCARD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(action_script!(
        r"
if s ~= 'failed' then return {0, s} end
redis.call('ZREM', KEYS[3], ARGV[1])
for i = 5, 11 do redis.call('HDEL', KEYS[i], ARGV[1]) end
redis.call('SET', KEYS[4], 'discarded', 'PX', ARGV[3])
return {1, now}
"
    ))
});
