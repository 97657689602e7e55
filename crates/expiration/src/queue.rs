//! A durable delayed-job queue on Redis, one job per order, driven by Lua scripts.
//!
//! BullMQ's design (a delayed sorted set, leases, a stalled-job sweep) with its known gaps
//! closed:
//! - **one job per order**: the order id is the job id; enqueueing it again is a no-op, and
//!   so is enqueueing a job that already fired (a tombstone remembers it for a week);
//! - **server time**: every script reads `TIME` from Redis, so worker clocks never matter;
//! - **leases with tokens**: [`Queue::claim`] moves due jobs to a leased set with a deadline
//!   and a token; only the holder of the current token can [`Queue::ack`] or
//!   [`Queue::retry`]. A worker that dies loses its lease, and the next claim takes the job
//!   back, so at-least-once delivery holds across crashes;
//! - **bounded retries**: failures come back with exponential backoff and end in a dead set
//!   that is visible ([`Queue::stats`]) and counted.
//!
//! Keys live under `<namespace>:expiration:`: `jobs` (hash id → payload: the trace context and
//! request id of the `order.created` that scheduled the job, as JSON), `due` and `leased`
//! (sorted sets of due time / lease deadline in ms), `tokens` and `attempts` (hashes), `dead`
//! (sorted set of the time each job gave up), and `done:<id>` tombstones (`1` fired,
//! `discarded` discarded by an operator). What the operators' board shows is kept beside
//! them: `due_at` (the due time of a leased or dead job, which its sorted set no longer
//! holds), `errors` and `failed_at` (the last failure of a job that failed at least once;
//! `dead_reasons` holds the reasons of jobs that died before `errors` existed), `completed`
//! (jobs fired since the queue was made, counted by the ack) and `lateness:<minute>` (see
//! [`crate::lateness`]). Enqueueing a job that becomes the earliest publishes its due time on
//! `<prefix>wake`, so idle workers wake at once; so does an operator's retry or promote
//! ([`crate::board`]).

use std::{collections::HashMap, time::Duration};

use crate::{lateness, worker::now_ms};

use anyhow::bail;
use redis::{Script, aio::ConnectionManagerConfig};
use ticketing_common::{admin::ActionLog, bus::parked::Parking, redis::Redis, telemetry};
use uuid::Uuid;

/// How long a fired job's tombstone keeps a redelivered `order.created` from enqueueing it
/// again; as long as the event stream keeps events.
pub(crate) const DONE_TTL_MS: u64 = 7 * 24 * 3600 * 1000;

const ENQUEUE: &str = r"
-- KEYS: jobs, due, done:<id>   ARGV: id, due ms, payload, wake channel
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 or redis.call('EXISTS', KEYS[3]) == 1 then
  return 0
end
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
if first[2] == nil or tonumber(ARGV[2]) < tonumber(first[2]) then
  redis.call('PUBLISH', ARGV[4], ARGV[2])
end
return 1
";

const CLAIM: &str = r"
-- KEYS: jobs, due, leased, tokens, dead, due_at   ARGV: lease ms, batch, token prefix
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local batch = tonumber(ARGV[2])
-- Leases that ran out: their worker died or hung. The job is due again at once, and keeps
-- the due time it had, so its lateness counts the time lost.
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, batch)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
  local at = redis.call('HGET', KEYS[6], id)
  redis.call('HDEL', KEYS[6], id)
  redis.call('ZADD', KEYS[2], at or now, id)
end
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'WITHSCORES', 'LIMIT', 0, batch)
local out = {now, -1, 0, 0, 0}
for i = 1, #due, 2 do
  local id, at = due[i], due[i + 1]
  local token = ARGV[3] .. ':' .. now .. ':' .. id
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[1]), id)
  redis.call('HSET', KEYS[4], id, token)
  redis.call('HSET', KEYS[6], id, at)
  table.insert(out, id)
  table.insert(out, redis.call('HGET', KEYS[1], id) or '')
  table.insert(out, at)
  table.insert(out, token)
end
-- When to look again: the next due job or the next lease to run out, whichever is first.
local next_at = -1
local d = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if d[2] then next_at = tonumber(d[2]) end
local l = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
if l[2] and (next_at < 0 or tonumber(l[2]) < next_at) then next_at = tonumber(l[2]) end
if next_at >= 0 then out[2] = math.max(0, next_at - now) end
out[3] = redis.call('ZCARD', KEYS[2])
out[4] = redis.call('ZCARD', KEYS[3])
out[5] = redis.call('ZCARD', KEYS[5])
return out
";

const ACK: &str = r"
-- KEYS: jobs, leased, tokens, attempts, done:<id>, completed, due_at, errors, failed_at,
--       lateness:<minute>
-- ARGV: id, token, done ttl ms, lateness ms, lateness bucket, lateness ttl ms
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[7], ARGV[1])
redis.call('HDEL', KEYS[8], ARGV[1])
redis.call('HDEL', KEYS[9], ARGV[1])
redis.call('SET', KEYS[5], '1', 'PX', ARGV[3])
redis.call('INCR', KEYS[6])
redis.call('HINCRBY', KEYS[10], ARGV[5], 1)
local max = tonumber(redis.call('HGET', KEYS[10], 'max') or '-1')
if tonumber(ARGV[4]) > max then redis.call('HSET', KEYS[10], 'max', ARGV[4]) end
redis.call('PEXPIRE', KEYS[10], ARGV[6])
return 1
";

const RETRY: &str = r"
-- KEYS: due, leased, tokens, attempts, dead, errors, failed_at, due_at
-- ARGV: id, token, max attempts, base backoff ms, reason
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[6], ARGV[1], ARGV[5])
redis.call('HSET', KEYS[7], ARGV[1], now)
local attempts = redis.call('HINCRBY', KEYS[4], ARGV[1], 1)
if attempts >= tonumber(ARGV[3]) then
  -- due_at keeps the due time of its last try.
  redis.call('ZADD', KEYS[5], now, ARGV[1])
  return 2
end
redis.call('HDEL', KEYS[8], ARGV[1])
local backoff = tonumber(ARGV[4]) * (2 ^ (attempts - 1))
redis.call('ZADD', KEYS[1], now + math.min(backoff, 60000), ARGV[1])
return 1
";

/// A job handed to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub order_id: Uuid,
    /// When it was due, ms since the epoch (Redis clock).
    pub due_ms: i64,
    /// Proof of the lease; needed to ack or retry.
    pub token: String,
    /// The trace context and request id of the work that scheduled the job (empty for a job
    /// scheduled outside any trace), so firing it continues that trace.
    pub headers: HashMap<String, String>,
}

/// What a claim returned besides the jobs.
#[derive(Debug, Clone, Default)]
pub struct Claim {
    pub jobs: Vec<Job>,
    /// Redis time of the claim, ms since the epoch.
    pub now_ms: i64,
    /// How long until the next job is due or a lease runs out; `None` when nothing waits.
    pub next_in: Option<Duration>,
    pub stats: Stats,
}

/// Queue sizes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub pending: u64,
    pub leased: u64,
    pub dead: u64,
}

/// What became of a retried job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retried {
    /// It will be due again after a backoff.
    Later,
    /// It failed too often and is in the dead set.
    Dead,
    /// The lease was no longer ours; someone else has the job.
    LostLease,
}

/// The queue's handle. Cheap to clone.
#[derive(Clone)]
pub struct Queue {
    redis: Redis,
    prefix: String,
    lease: Duration,
    max_attempts: u32,
    base_backoff: Duration,
    enqueue: Script,
    claim: Script,
    ack: Script,
    retry: Script,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("prefix", &self.prefix)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl Queue {
    /// Connects to the queue's Redis and refuses one that may evict keys: an evicted job is
    /// an order that never expires.
    pub async fn connect(
        url: &str,
        namespace_prefix: &str,
        lease: Duration,
    ) -> anyhow::Result<Queue> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let redis = ticketing_common::redis::connect_with(url, config).await?;
        let queue = Queue {
            redis,
            prefix: format!("{namespace_prefix}:expiration:"),
            lease,
            max_attempts: 10,
            base_backoff: Duration::from_millis(500),
            enqueue: Script::new(ENQUEUE),
            claim: Script::new(CLAIM),
            ack: Script::new(ACK),
            retry: Script::new(RETRY),
        };
        queue.check_eviction_policy().await?;
        Ok(queue)
    }

    /// Changes the retry policy (tests use small numbers).
    pub fn with_retries(mut self, max_attempts: u32, base_backoff: Duration) -> Self {
        self.max_attempts = max_attempts.max(1);
        self.base_backoff = base_backoff;
        self
    }

    pub(crate) fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The key of a job's tombstone.
    pub(crate) fn done_key(&self, order_id: Uuid) -> String {
        self.key(&format!("done:{order_id}"))
    }

    /// The key of a minute's lateness counts (minutes since the epoch).
    pub(crate) fn lateness_key(&self, minute: i64) -> String {
        self.key(&format!("lateness:{minute}"))
    }

    /// A connection to the queue's Redis (under Sentinel, to its master, whichever it is
    /// now).
    pub(crate) fn redis(&self) -> Redis {
        self.redis.clone()
    }

    /// The channel that wakes idle workers when an earlier job arrives.
    pub fn wake_channel(&self) -> String {
        self.key("wake")
    }

    /// A pub/sub connection to the queue's Redis (under Sentinel, to its current master).
    pub async fn pubsub(&self) -> redis::RedisResult<redis::aio::PubSub> {
        self.redis.pubsub().await
    }

    /// Where expiration parks the events it cannot apply: a hash in this same Redis, which
    /// persists and never evicts.
    pub fn parking(&self) -> Parking {
        Parking::Redis {
            redis: self.redis.clone(),
            key: self.key("parked"),
        }
    }

    /// Where operators' actions on the queue are recorded: a capped list in this same Redis.
    pub fn action_log(&self) -> ActionLog {
        ActionLog::Redis {
            redis: self.redis.clone(),
            key: self.key("actions"),
        }
    }

    /// Fails unless Redis' `maxmemory-policy` is `noeviction`.
    pub async fn check_eviction_policy(&self) -> anyhow::Result<()> {
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut self.redis.clone())
            .await?;
        let policy = info
            .lines()
            .find_map(|line| line.strip_prefix("maxmemory_policy:"))
            .map(str::trim)
            .unwrap_or("unknown");
        if policy != "noeviction" {
            bail!(
                "the expiration queue's Redis uses maxmemory-policy {policy}, which can evict delayed jobs (orders that would never expire): \
                 set maxmemory-policy noeviction and appendonly yes on it, or point REDIS_QUEUE_URL at a Redis that has them"
            );
        }
        Ok(())
    }

    /// Schedules the expiry of an order, remembering the trace context and request id of the
    /// work in progress. `false` if it is already scheduled or already fired.
    pub async fn enqueue(&self, order_id: Uuid, due_ms: i64) -> anyhow::Result<bool> {
        let headers = telemetry::context_headers(&tracing::Span::current());
        let payload = serde_json::to_string(&headers)?;
        let added: u8 = self
            .enqueue
            .key(self.key("jobs"))
            .key(self.key("due"))
            .key(self.done_key(order_id))
            .arg(order_id.to_string())
            .arg(due_ms)
            .arg(&payload)
            .arg(self.wake_channel())
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(added == 1)
    }

    /// Leases up to `batch` due jobs to `worker` (any string unique to the worker).
    pub async fn claim(&self, worker: &str, batch: usize) -> anyhow::Result<Claim> {
        let raw: Vec<redis::Value> = self
            .claim
            .key(self.key("jobs"))
            .key(self.key("due"))
            .key(self.key("leased"))
            .key(self.key("tokens"))
            .key(self.key("dead"))
            .key(self.key("due_at"))
            .arg(self.lease.as_millis() as u64)
            .arg(batch)
            .arg(worker)
            .invoke_async(&mut self.redis.clone())
            .await?;
        parse_claim(&raw)
    }

    /// Finishes a job that fired just now; `false` if the lease was lost (another worker has
    /// or had it). In the same step it counts the job as completed and records how late it
    /// fired (now, by this process's clock, minus its due time) in this minute's lateness.
    pub async fn ack(&self, job: &Job) -> anyhow::Result<bool> {
        let now = now_ms();
        let late = u64::try_from(now - job.due_ms).unwrap_or(0);
        let done: u8 = self
            .ack
            .key(self.key("jobs"))
            .key(self.key("leased"))
            .key(self.key("tokens"))
            .key(self.key("attempts"))
            .key(self.done_key(job.order_id))
            .key(self.key("completed"))
            .key(self.key("due_at"))
            .key(self.key("errors"))
            .key(self.key("failed_at"))
            .key(self.lateness_key(now.div_euclid(60_000)))
            .arg(job.order_id.to_string())
            .arg(&job.token)
            .arg(DONE_TTL_MS)
            .arg(late)
            .arg(lateness::bucket(late))
            .arg(lateness::KEEP_MINUTES * 60_000)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(done == 1)
    }

    /// Gives a failed job back for a later try, or to the dead set after too many.
    pub async fn retry(&self, job: &Job, reason: &str) -> anyhow::Result<Retried> {
        let outcome: u8 = self
            .retry
            .key(self.key("due"))
            .key(self.key("leased"))
            .key(self.key("tokens"))
            .key(self.key("attempts"))
            .key(self.key("dead"))
            .key(self.key("errors"))
            .key(self.key("failed_at"))
            .key(self.key("due_at"))
            .arg(job.order_id.to_string())
            .arg(&job.token)
            .arg(self.max_attempts)
            .arg(self.base_backoff.as_millis() as u64)
            .arg(reason)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(match outcome {
            1 => Retried::Later,
            2 => Retried::Dead,
            _ => Retried::LostLease,
        })
    }

    /// Current sizes of the pending, leased and dead sets.
    pub async fn stats(&self) -> anyhow::Result<Stats> {
        let (pending, leased, dead): (u64, u64, u64) = redis::pipe()
            .zcard(self.key("due"))
            .zcard(self.key("leased"))
            .zcard(self.key("dead"))
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(Stats {
            pending,
            leased,
            dead,
        })
    }

    /// Ids in the dead set with the reason each gave up.
    pub async fn dead_jobs(&self) -> anyhow::Result<Vec<(Uuid, String)>> {
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.key("dead"))
            .arg(0)
            .arg(-1)
            .query_async(&mut self.redis.clone())
            .await?;
        let mut out = Vec::new();
        for id in ids {
            let (reason, old_reason): (Option<String>, Option<String>) = redis::pipe()
                .hget(self.key("errors"), &id)
                .hget(self.key("dead_reasons"), &id)
                .query_async(&mut self.redis.clone())
                .await?;
            out.push((id.parse()?, reason.or(old_reason).unwrap_or_default()));
        }
        Ok(out)
    }
}

pub(crate) fn int(value: &redis::Value) -> anyhow::Result<i64> {
    match value {
        redis::Value::Int(n) => Ok(*n),
        redis::Value::BulkString(bytes) => Ok(std::str::from_utf8(bytes)?.parse()?),
        other => bail!("unexpected script value {other:?}"),
    }
}

pub(crate) fn text(value: &redis::Value) -> anyhow::Result<String> {
    match value {
        redis::Value::BulkString(bytes) => Ok(String::from_utf8(bytes.clone())?),
        redis::Value::SimpleString(s) => Ok(s.clone()),
        redis::Value::Int(n) => Ok(n.to_string()),
        other => bail!("unexpected script value {other:?}"),
    }
}

fn parse_claim(raw: &[redis::Value]) -> anyhow::Result<Claim> {
    anyhow::ensure!(
        raw.len() >= 5 && (raw.len() - 5).is_multiple_of(4),
        "malformed claim reply"
    );
    let next = int(&raw[1])?;
    let mut claim = Claim {
        now_ms: int(&raw[0])?,
        next_in: (next >= 0).then(|| Duration::from_millis(next as u64)),
        stats: Stats {
            pending: int(&raw[2])? as u64,
            leased: int(&raw[3])? as u64,
            dead: int(&raw[4])? as u64,
        },
        jobs: Vec::new(),
    };
    for chunk in raw[5..].chunks(4) {
        claim.jobs.push(Job {
            order_id: text(&chunk[0])?.parse()?,
            due_ms: int(&chunk[2])?,
            token: text(&chunk[3])?,
            // Jobs scheduled before payloads carried headers held the order id: no context.
            headers: serde_json::from_str(&text(&chunk[1])?).unwrap_or_default(),
        });
    }
    Ok(claim)
}

#[cfg(test)]
mod tests {
    use redis::Value;

    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    /// A claim reply holding one job whose stored payload is `payload`.
    fn claim_with_payload(order: Uuid, payload: &str) -> Vec<Value> {
        vec![
            Value::Int(1_000),
            Value::Int(-1),
            Value::Int(0),
            Value::Int(1),
            Value::Int(0),
            bulk(&order.to_string()),
            bulk(payload),
            Value::Int(900),
            bulk("worker:1000:id"),
        ]
    }

    #[test]
    fn a_job_keeps_the_trace_headers_it_was_scheduled_with() {
        let order = Uuid::now_v7();
        let payload = r#"{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","x-request-id":"req-1"}"#;
        let claim = parse_claim(&claim_with_payload(order, payload)).unwrap();
        let job = &claim.jobs[0];
        assert_eq!(job.order_id, order);
        assert_eq!(job.due_ms, 900);
        assert_eq!(job.headers["x-request-id"], "req-1");
        assert!(job.headers["traceparent"].starts_with("00-4bf92f35"));
    }

    #[test]
    fn jobs_scheduled_before_payloads_carried_headers_still_fire() {
        let order = Uuid::now_v7();
        for old in [order.to_string(), String::new()] {
            let claim = parse_claim(&claim_with_payload(order, &old)).unwrap();
            assert_eq!(claim.jobs[0].order_id, order, "payload {old:?}");
            assert!(claim.jobs[0].headers.is_empty(), "payload {old:?}");
        }
    }
}
