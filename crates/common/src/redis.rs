//! Redis connections with a plain message when Redis is not there.

use std::time::Duration;

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
    Ok(ConnectionManager::new_lazy_with_config(
        client(url)?,
        config(),
    )?)
}

/// A self-reconnecting connection. Fails at start-up, with one clear line, if Redis does not
/// answer; afterwards it reconnects by itself.
pub async fn connect(url: &str) -> anyhow::Result<ConnectionManager> {
    let client = client(url)?;
    let config = config();
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
