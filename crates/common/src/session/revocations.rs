//! Revoked sessions: a sign-out writes the session's id to the queue Redis (the one that
//! never evicts) with the token's remaining lifetime as TTL, and every service's session
//! extractor refuses a token whose id is there.
//!
//! While that Redis is unreachable, verification fails open (a session is believed unless
//! this process knows it was revoked), so the system keeps answering as it does in any Redis
//! outage. Each process remembers the revocations it made or saw until they expire, and a
//! revocation it could not write is kept and written by [`Revocations::run_flush`] once Redis
//! answers again.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use crate::redis::Redis;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{redis::Breaker, settings::Namespace};

/// How long a request waits for Redis before believing the session (fail open).
const CHECK_TIMEOUT: Duration = Duration::from_millis(200);
/// After a failed check, how long checks leave Redis alone (and believe sessions).
const COOL_DOWN: Duration = Duration::from_secs(1);
/// How long sign-out waits for Redis before keeping the revocation for the flush.
const WRITE_TIMEOUT: Duration = Duration::from_millis(500);
/// Revocations one process remembers at most; beyond, those expiring soonest are forgotten.
const MAX_REMEMBERED: usize = 100_000;
/// How often kept revocations are retried.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Counts revocation checks that could not reach Redis (and so believed the session).
pub const REVOCATION_CHECK_ERRORS: &str = "session_revocation_check_errors_total";
/// Revocations waiting to be written to Redis.
pub const REVOCATIONS_PENDING: &str = "session_revocations_pending";
/// Revocations that could be kept for the flush no more (too many waiting).
pub const REVOCATIONS_DROPPED: &str = "session_revocations_dropped_total";

/// The revoked-session store of one namespace.
pub struct Revocations {
    redis: Redis,
    prefix: String,
    /// Session id → expiry (unix seconds) of the revocations this process made or saw.
    remembered: Mutex<HashMap<Uuid, i64>>,
    /// Revocations not yet written to Redis.
    pending: Mutex<HashMap<Uuid, i64>>,
    /// One "Redis unreachable" line every few seconds in an outage, not one per request.
    breaker: Breaker,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

impl Revocations {
    /// The store on an open connection to the queue Redis.
    pub fn new(redis: Redis, namespace: &Namespace) -> Self {
        Revocations {
            redis,
            prefix: format!("{}:session:revoked:", namespace.redis_prefix()),
            remembered: Mutex::default(),
            pending: Mutex::default(),
            breaker: Breaker::default(),
        }
    }

    /// The store on the queue Redis at `url`, connected on first use: a process starts, and
    /// checks sessions (failing open), while that Redis is down.
    pub fn open(url: &str, namespace: &Namespace) -> anyhow::Result<Self> {
        Ok(Revocations::new(crate::redis::lazy(url)?, namespace))
    }

    fn key(&self, session: Uuid) -> String {
        format!("{}{}", self.prefix, session.simple())
    }

    /// Whether the session was revoked. Unknown to this process and Redis unreachable: not
    /// revoked (fail open).
    pub async fn is_revoked(&self, session: Uuid, expires_at: i64) -> bool {
        if self.remembers(session) {
            return true;
        }
        if !self.breaker.usable() {
            metrics::counter!(REVOCATION_CHECK_ERRORS).increment(1);
            return false;
        }
        let mut redis = self.redis.clone();
        let mut exists = redis::cmd("EXISTS");
        exists.arg(self.key(session));
        let answer =
            tokio::time::timeout(CHECK_TIMEOUT, exists.query_async::<bool>(&mut redis)).await;
        match answer {
            Ok(Ok(revoked)) => {
                if self.breaker.recovered() {
                    tracing::info!("the queue Redis answers again: revoked sessions are checked");
                }
                if revoked {
                    self.remember(session, expires_at);
                }
                revoked
            }
            Ok(Err(error)) => self.believed(&error.to_string()),
            Err(_) => self.believed("timed out"),
        }
    }

    /// A check Redis could not answer: the session is believed, and Redis left alone for a
    /// moment, so an outage costs one timeout a second rather than one per request.
    fn believed(&self, reason: &str) -> bool {
        metrics::counter!(REVOCATION_CHECK_ERRORS).increment(1);
        if self.breaker.failed(COOL_DOWN) {
            tracing::warn!(
                reason,
                "the queue Redis does not answer: sessions are believed unless this process knows them revoked"
            );
        }
        false
    }

    /// Revokes a session until `expires_at` (unix seconds). Never fails: a revocation Redis
    /// does not take now is remembered here and written by the flush.
    pub async fn revoke(&self, session: Uuid, expires_at: i64) {
        self.remember(session, expires_at);
        if let Err(reason) = self.write(session, expires_at).await {
            tracing::warn!(%reason, "cannot record a sign-out in the queue Redis yet; it is kept and retried");
            let mut pending = self.pending.lock().expect("pending revocations");
            if pending.len() < MAX_REMEMBERED {
                pending.insert(session, expires_at);
            } else {
                // Bounded: past this, only this process remembers the sign-out.
                metrics::counter!(REVOCATIONS_DROPPED).increment(1);
                tracing::error!(
                    "too many sign-outs wait for the queue Redis: this one is remembered here only"
                );
            }
            metrics::gauge!(REVOCATIONS_PENDING).set(pending.len() as f64);
        }
    }

    async fn write(&self, session: Uuid, expires_at: i64) -> Result<(), String> {
        let ttl = expires_at - now();
        if ttl <= 0 {
            return Ok(()); // the token is refused as expired anyway
        }
        let mut redis = self.redis.clone();
        let mut set = redis::cmd("SET");
        set.arg(self.key(session)).arg(1).arg("EX").arg(ttl);
        match tokio::time::timeout(WRITE_TIMEOUT, set.query_async::<()>(&mut redis)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }

    /// Writes the kept revocations; returns how many are still waiting.
    pub async fn flush(&self) -> usize {
        let waiting: Vec<(Uuid, i64)> = self
            .pending
            .lock()
            .expect("pending revocations")
            .iter()
            .map(|(session, exp)| (*session, *exp))
            .collect();
        for (session, expires_at) in waiting {
            if self.write(session, expires_at).await.is_err() {
                break;
            }
            self.pending
                .lock()
                .expect("pending revocations")
                .remove(&session);
        }
        let left = self.pending.lock().expect("pending revocations").len();
        metrics::gauge!(REVOCATIONS_PENDING).set(left as f64);
        left
    }

    /// Retries kept revocations every second until `stop`.
    pub async fn run_flush(&self, stop: CancellationToken) -> anyhow::Result<()> {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(FLUSH_INTERVAL) => {}
            }
            let had = !self.pending.lock().expect("pending revocations").is_empty();
            if had && self.flush().await == 0 {
                tracing::info!("kept sign-outs written to the queue Redis");
            }
        }
        // One last try on the way out, so a sign-out taken during an outage is not lost
        // with this process if Redis is back.
        if !self.pending.lock().expect("pending revocations").is_empty() {
            let left = self.flush().await;
            if left > 0 {
                tracing::error!(
                    left,
                    "sign-outs could not be written to the queue Redis before stopping"
                );
            }
        }
        Ok(())
    }

    fn remembers(&self, session: Uuid) -> bool {
        let remembered = self.remembered.lock().expect("remembered revocations");
        remembered
            .get(&session)
            .is_some_and(|expires_at| *expires_at > now())
    }

    fn remember(&self, session: Uuid, expires_at: i64) {
        let mut remembered = self.remembered.lock().expect("remembered revocations");
        if remembered.len() >= MAX_REMEMBERED {
            let now = now();
            remembered.retain(|_, exp| *exp > now);
            if remembered.len() >= MAX_REMEMBERED {
                // Forget the tenth expiring soonest; Redis still has them.
                let mut expiries: Vec<i64> = remembered.values().copied().collect();
                let cut = MAX_REMEMBERED / 10;
                let (_, threshold, _) = expiries.select_nth_unstable(cut);
                let threshold = *threshold;
                remembered.retain(|_, exp| *exp > threshold);
            }
        }
        remembered.insert(session, expires_at);
    }
}
