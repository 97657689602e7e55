//! Redis connections with a plain message when Redis is not there.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::secret::redact_url;

fn config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_millis(500)))
        .set_number_of_retries(1)
}

fn client(url: &str) -> anyhow::Result<redis::Client> {
    redis::Client::open(url).with_context(|| format!("invalid Redis URL {}", redact_url(url)))
}

/// A self-reconnecting connection that connects on first use: for what works without Redis
/// for a while (session revocations fail open, attempt limits count in process), so a
/// process can start, and keep starting, during a Redis outage. Fails only on a bad URL.
pub fn lazy(url: &str) -> anyhow::Result<ConnectionManager> {
    lazy_with(url, config())
}

/// [`lazy`] with the caller's timeouts and retries.
pub fn lazy_with(url: &str, config: ConnectionManagerConfig) -> anyhow::Result<ConnectionManager> {
    Ok(ConnectionManager::new_lazy_with_config(
        client(url)?,
        config,
    )?)
}

/// A self-reconnecting connection. Fails at start-up, with one clear line, if Redis does not
/// answer; afterwards it reconnects by itself.
pub async fn connect(url: &str) -> anyhow::Result<ConnectionManager> {
    connect_with(url, config()).await
}

/// [`connect`] with the caller's timeouts and retries.
pub async fn connect_with(
    url: &str,
    config: ConnectionManagerConfig,
) -> anyhow::Result<ConnectionManager> {
    let client = client(url)?;
    let mut conn = tokio::time::timeout(
        Duration::from_secs(5),
        ConnectionManager::new_with_config(client, config),
    )
    .await
    .map_err(|_| anyhow::anyhow!("timed out"))
    .and_then(|r| r.map_err(anyhow::Error::from))
    .with_context(|| unreachable_message(url))?;
    ping(&mut conn)
        .await
        .with_context(|| unreachable_message(url))?;
    Ok(conn)
}

/// `PING`, for readiness checks.
pub async fn ping(conn: &mut ConnectionManager) -> anyhow::Result<()> {
    let _: String = redis::cmd("PING").query_async(conn).await?;
    Ok(())
}

/// The one line a user sees when Redis is not there.
pub fn unreachable_message(url: &str) -> String {
    format!(
        "Redis is not reachable at {}: start redis-server (scripts/services.sh starts a local one) or set REDIS_URL",
        redact_url(url)
    )
}

/// A circuit breaker for a Redis its user can do without for a while (the cache, session
/// revocations, shared attempt limits): after a failure Redis is left alone for a cool-down,
/// so an outage costs one timeout per cool-down rather than one per request, and
/// [`Breaker::failed`] and [`Breaker::recovered`] say when an outage starts and ends, so each
/// is logged once.
#[derive(Debug, Default)]
pub struct Breaker {
    down_until: Mutex<Option<Instant>>,
    outage: AtomicBool,
}

impl Breaker {
    /// Whether Redis may be tried now.
    pub fn usable(&self) -> bool {
        self.down_until
            .lock()
            .expect("breaker lock")
            .is_none_or(|until| Instant::now() >= until)
    }

    /// Records a failure (Redis is left alone for `cool_down`); `true` if this starts an
    /// outage.
    pub fn failed(&self, cool_down: Duration) -> bool {
        *self.down_until.lock().expect("breaker lock") = Some(Instant::now() + cool_down);
        !self.outage.swap(true, Ordering::AcqRel)
    }

    /// Records a success; `true` if this ends an outage.
    pub fn recovered(&self) -> bool {
        self.outage.load(Ordering::Acquire) && self.outage.swap(false, Ordering::AcqRel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_stands_redis_aside_for_the_cool_down_and_each_outage_is_told_once() {
        let breaker = Breaker::default();
        assert!(breaker.usable());
        assert!(!breaker.recovered(), "nothing to recover from");
        assert!(breaker.failed(Duration::from_secs(60)), "an outage starts");
        assert!(!breaker.usable(), "left alone while cooling down");
        assert!(!breaker.failed(Duration::from_secs(60)), "the same outage");
        assert!(breaker.recovered(), "the outage ends");
        assert!(!breaker.recovered(), "once");
        breaker.failed(Duration::ZERO);
        assert!(breaker.usable(), "tried again once the cool-down is over");
    }
}
