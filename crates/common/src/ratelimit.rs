//! Limits on attempts: per client address in process memory ([`RateLimiter`], a middleware
//! for sign-in and sign-up), and per anything-else across every replica in the queue Redis
//! ([`SharedLimit`], e.g. failed sign-ins per account).
//!
//! Both count in fixed windows. Their in-process tables ([`Windows`]) are bounded: when one
//! is full, expired windows go first, then those with the fewest attempts, so a flood of new
//! keys never resets the counts of everyone else, least of all a budget already used up.

use std::{
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
    sync::{Arc, LazyLock, Mutex},
    time::{Duration, Instant},
};

use crate::redis::Redis;
use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

use crate::{error::ApiError, forwarded::Proxies, redis::Breaker, settings::Namespace};

const MINUTE: Duration = Duration::from_secs(60);
/// Keys a process-memory table tracks at most.
const MAX_TRACKED: usize = 100_000;
/// How long a [`SharedLimit`] waits for Redis before counting in process memory instead.
const REDIS_TIMEOUT: Duration = Duration::from_millis(200);
/// After a failure, how long attempts are counted in this process without trying Redis.
const COOL_DOWN: Duration = Duration::from_secs(1);

/// Fixed-window counters per key in process memory, at most `capacity` keys.
#[derive(Debug)]
pub struct Windows<K> {
    per_window: u32,
    window: Duration,
    capacity: usize,
    table: Mutex<HashMap<K, (Instant, u32)>>,
}

impl<K: Hash + Eq + Clone> Windows<K> {
    pub fn new(per_window: u32, window: Duration) -> Self {
        Windows::with_capacity(per_window, window, MAX_TRACKED)
    }

    pub fn with_capacity(per_window: u32, window: Duration, capacity: usize) -> Self {
        Windows {
            per_window,
            window,
            capacity: capacity.max(10),
            table: Mutex::default(),
        }
    }

    /// Counts an attempt for `key`; `Err(seconds)` until the next one is allowed.
    pub fn hit(&self, key: K, now: Instant) -> Result<(), u64> {
        let mut table = self.table.lock().expect("rate limit table");
        if table.len() >= self.capacity && !table.contains_key(&key) {
            self.make_room(&mut table, now);
        }
        let (start, count) = table.entry(key).or_insert((now, 0));
        if now.duration_since(*start) >= self.window {
            *start = now;
            *count = 0;
        }
        if *count >= self.per_window {
            let wait = self.window.saturating_sub(now.duration_since(*start));
            return Err(wait.as_secs().max(1));
        }
        *count += 1;
        Ok(())
    }

    /// Takes back one attempt of `key` (it turned out not to count).
    pub fn give_back(&self, key: &K) {
        if let Some((_, count)) = self.table.lock().expect("rate limit table").get_mut(key) {
            *count = count.saturating_sub(1);
        }
    }

    /// How many keys are tracked.
    pub fn len(&self) -> usize {
        self.table.lock().expect("rate limit table").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops expired windows, then, if that was not enough, a tenth of the others: those
    /// with the fewest attempts first, the oldest among equals. A budget someone used up is
    /// the last thing forgotten, so a flood of new keys cannot buy its senders a fresh one.
    /// Amortised, a tenth of the capacity is free after each call.
    fn make_room(&self, table: &mut HashMap<K, (Instant, u32)>, now: Instant) {
        table.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        if table.len() < self.capacity {
            return;
        }
        let mut ranked: Vec<(u32, Instant, K)> = table
            .iter()
            .map(|(key, (start, count))| (*count, *start, key.clone()))
            .collect();
        let cut = (self.capacity / 10).max(1);
        ranked.select_nth_unstable_by_key(cut - 1, |(count, start, _)| (*count, *start));
        for (_, _, key) in &ranked[..cut] {
            table.remove(key);
        }
        tracing::warn!(
            tracked = table.len(),
            "rate limit table full: the least used windows were dropped"
        );
    }
}

/// Counts attempts per client address in one-minute windows. `per_minute == 0` turns it off.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    per_minute: u32,
    proxies: Proxies,
    windows: Arc<Windows<IpAddr>>,
}

/// The unit a budget belongs to: an IPv4 address, or an IPv6 /64 (one subscriber's whole
/// prefix, which it can otherwise rotate through freely).
fn bucket(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(prefix))
        }
    }
}

impl RateLimiter {
    /// `per_minute` attempts per client address (0: no limit); its table tracks at most
    /// 100,000 addresses.
    pub fn new(per_minute: u32, proxies: Proxies) -> Self {
        RateLimiter {
            per_minute,
            proxies,
            windows: Arc::new(Windows::with_capacity(per_minute, MINUTE, MAX_TRACKED)),
        }
    }

    /// Records an attempt; `Err(seconds)` says how long until the next one is allowed.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        self.windows.hit(bucket(client), now)
    }
}

/// Middleware applying the limiter to every request of the routes it wraps.
pub async fn limit(State(limiter): State<RateLimiter>, request: Request, next: Next) -> Response {
    let peer = crate::forwarded::peer(request.extensions());
    if let Some(peer) = peer {
        let client = limiter.proxies.client_address(peer, request.headers());
        if let Err(retry_after_secs) = limiter.check(client, Instant::now()) {
            tracing::warn!(%client, "rate limit reached");
            return ApiError::TooManyRequests { retry_after_secs }.into_response();
        }
    }
    next.run(request).await
}

/// At most `limit` attempts per key per window, counted in the queue Redis so every replica
/// shares one budget. Keys are hashed before they reach Redis (they may be e-mail
/// addresses). While Redis does not answer, each process counts in its own memory instead:
/// the limit then holds per replica rather than not at all.
#[derive(Clone)]
pub struct SharedLimit {
    redis: Redis,
    prefix: String,
    limit: u32,
    window: Duration,
    local: Arc<Windows<[u8; 32]>>,
    breaker: Arc<Breaker>,
}

impl std::fmt::Debug for SharedLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLimit")
            .field("prefix", &self.prefix)
            .field("limit", &self.limit)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// One counted attempt, to give back if it turns out not to count (a sign-in that
/// succeeded).
#[derive(Debug)]
pub struct Attempt {
    key: [u8; 32],
    in_redis: bool,
}

/// INCR the window's counter (starting its expiry with the first attempt); the counter's
/// remaining milliseconds when it is over the limit, -1 otherwise. A counter found without an
/// expiry gets one, so no key can lock anyone out for longer than a window.
const RESERVE: &str = r"
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
if n > tonumber(ARGV[1]) then return ttl end
return -1
";

/// DECR the counter if it still exists (its window may have ended meanwhile).
const GIVE_BACK: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('DECR', KEYS[1]) end
return 0
";

static RESERVE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(RESERVE));
static GIVE_BACK_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(GIVE_BACK));

impl SharedLimit {
    /// A limit named `name` (part of its Redis keys: `<ns>:limit:<name>:<hash>`).
    pub fn new(
        redis: Redis,
        namespace: &Namespace,
        name: &str,
        limit: u32,
        window: Duration,
    ) -> Self {
        SharedLimit {
            redis,
            prefix: format!("{}:limit:{name}:", namespace.redis_prefix()),
            limit,
            window,
            local: Arc::new(Windows::new(limit, window)),
            breaker: Arc::default(),
        }
    }

    fn digest(key: &str) -> [u8; 32] {
        Sha256::digest(key.as_bytes()).into()
    }

    /// Counts an attempt for `key`; `Err(seconds)` until the window ends when it is over
    /// the limit.
    pub async fn attempt(&self, key: &str) -> Result<Attempt, u64> {
        let digest = SharedLimit::digest(key);
        let counted_here = |digest| {
            self.local.hit(digest, Instant::now()).map(|()| Attempt {
                key: digest,
                in_redis: false,
            })
        };
        if !self.breaker.usable() {
            return counted_here(digest);
        }
        let mut redis = self.redis.clone();
        let mut reserve = RESERVE_SCRIPT.key(self.redis_key(&digest));
        reserve.arg(self.limit).arg(self.window.as_millis() as u64);
        match tokio::time::timeout(REDIS_TIMEOUT, reserve.invoke_async::<i64>(&mut redis)).await {
            Ok(Ok(answer)) => {
                if self.breaker.recovered() {
                    tracing::info!(limit = %self.prefix, "the queue Redis answers again: attempts are counted there");
                }
                match answer {
                    -1 => Ok(Attempt {
                        key: digest,
                        in_redis: true,
                    }),
                    millis => Err((millis.max(0) as u64).div_ceil(1000).max(1)),
                }
            }
            outcome => {
                let reason = match outcome {
                    Ok(Err(error)) => error.to_string(),
                    _ => "timed out".to_owned(),
                };
                if self.breaker.failed(COOL_DOWN) {
                    tracing::warn!(%reason, limit = %self.prefix, "the queue Redis does not answer: counting attempts in this process");
                }
                counted_here(digest)
            }
        }
    }

    /// Takes an attempt back.
    pub async fn give_back(&self, attempt: Attempt) {
        if !attempt.in_redis {
            self.local.give_back(&attempt.key);
            return;
        }
        let mut redis = self.redis.clone();
        let undo = GIVE_BACK_SCRIPT.key(self.redis_key(&attempt.key));
        let outcome =
            tokio::time::timeout(REDIS_TIMEOUT, undo.invoke_async::<i64>(&mut redis)).await;
        if !matches!(outcome, Ok(Ok(_))) {
            tracing::debug!("could not give an attempt back; it counts until its window ends");
        }
    }

    fn redis_key(&self, digest: &[u8; 32]) -> String {
        format!("{}{}", self.prefix, hex::encode(digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn allows_n_per_minute_per_address_then_refuses_until_the_window_ends() {
        let limiter = RateLimiter::new(3, Proxies::none());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(A, t0).is_ok());
        }
        assert!(limiter.check(A, t0).is_err());
        assert!(
            limiter.check(B, t0).is_ok(),
            "another address has its own budget"
        );
        assert!(limiter.check(A, t0 + MINUTE).is_ok());
    }

    #[test]
    fn ipv6_addresses_of_one_64_prefix_share_a_budget() {
        let limiter = RateLimiter::new(2, Proxies::none());
        let t0 = Instant::now();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(limiter.check(a, t0).is_ok());
        assert!(limiter.check(b, t0).is_ok());
        assert!(limiter.check(a, t0).is_err(), "same /64");
        assert!(limiter.check(other, t0).is_ok(), "another /64");
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let limiter = RateLimiter::new(0, Proxies::none());
        let t0 = Instant::now();
        assert!((0..1000).all(|_| limiter.check(A, t0).is_ok()));
    }

    #[test]
    fn a_flood_of_new_keys_stays_bounded_and_keeps_a_used_up_budget() {
        let windows = Windows::with_capacity(2, MINUTE, 100);
        let t0 = Instant::now();
        // Old windows, all opened at one instant.
        for key in 0..90u32 {
            windows.hit(key, t0).unwrap();
        }
        // A recent key whose budget is used up.
        let recent = t0 + Duration::from_secs(30);
        windows.hit(1_000, recent).unwrap();
        windows.hit(1_000, recent).unwrap();
        assert!(windows.hit(1_000, recent).is_err());
        // A flood of new keys, a little later.
        let flood = recent + Duration::from_secs(1);
        for key in 2_000..2_080u32 {
            windows.hit(key, flood).unwrap();
            assert!(windows.len() <= 100, "bounded: {}", windows.len());
        }
        assert!(
            windows.hit(1_000, flood).is_err(),
            "the recent used-up budget survives the flood"
        );
    }

    #[test]
    fn an_old_used_up_budget_outlives_a_flood_of_fresh_keys() {
        let windows = Windows::with_capacity(2, MINUTE, 100);
        let t0 = Instant::now();
        windows.hit(7u32, t0).unwrap();
        windows.hit(7u32, t0).unwrap();
        let later = t0 + Duration::from_secs(10);
        for key in 1_000..1_500u32 {
            let _ = windows.hit(key, later);
        }
        assert!(windows.hit(7u32, later).is_err(), "still refused");
    }

    #[test]
    fn an_attempt_given_back_does_not_count() {
        let windows = Windows::new(1, MINUTE);
        let t0 = Instant::now();
        windows.hit("k", t0).unwrap();
        windows.give_back(&"k");
        assert!(windows.hit("k", t0).is_ok());
        assert!(windows.hit("k", t0).is_err());
    }
}
