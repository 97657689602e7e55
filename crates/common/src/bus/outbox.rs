//! The transactional outbox: the only way an event leaves a service that has a database.
//!
//! A flow calls [`enqueue`] inside its own transaction, so the event exists if and only if the
//! change committed. The [`Relay`] claims unsent rows (`FOR UPDATE SKIP LOCKED`, so replicas
//! share the work), publishes each with `Nats-Msg-Id` = event id, waits for JetStream's ack,
//! and marks them sent in the same transaction as the claim. If the relay dies after
//! publishing and before committing, the rows are published again and JetStream drops the
//! copies by id. While NATS is down rows simply wait; writes keep committing.

use std::time::Duration;

use anyhow::Context;
use futures::future::try_join_all;
use sqlx::{PgConnection, PgPool, postgres::PgListener};
use ticketing_events::{Envelope, Event};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Bus, publish::Outgoing};
use crate::metrics as m;

/// The channel `enqueue` notifies so the relay wakes at once.
const CHANNEL: &str = "outbox";
/// Without notifications (a lost listener connection) the relay still polls this often.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The longest pause between two tries while NATS does not take publishes.
const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// Sent rows are kept this long for inspection, then pruned.
const KEEP_SENT: &str = "1 hour";

/// The outbox table. Every service that publishes or consumes events
/// installs them with [`install_schema`] before its own migrations.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS outbox (
    -- Publication order; ids are random-ish and cannot order rows.
    seq        bigserial PRIMARY KEY,
    id         uuid NOT NULL UNIQUE,
    -- Relative subject (`ticket.created`); the relay adds the namespace prefix.
    subject    text NOT NULL,
    -- The whole envelope as sent, so a republish is byte-identical.
    payload    text NOT NULL,
    -- Trace context and request id of the transaction that wrote the event.
    headers    jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
-- The relay only ever looks for unsent rows; keep that lookup tiny.
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (seq) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL;
"#;

/// Creates the outbox tables if missing. Replicas starting together are serialised by an
/// advisory lock, since concurrent `CREATE ... IF NOT EXISTS` can still collide.
pub async fn install_schema(pool: &PgPool) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(crate::db::SCHEMA_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(SCHEMA)
        .execute(&mut *tx)
        .await
        .context("cannot create the outbox tables")?;
    sqlx::raw_sql(super::parked::SCHEMA)
        .execute(&mut *tx)
        .await
        .context("cannot create the parked events table")?;
    tx.commit().await?;
    Ok(())
}

/// Adds an event to the outbox inside the caller's transaction. It is published only if that
/// transaction commits. The current trace context and request id travel with it.
pub async fn enqueue<T: Event>(
    conn: &mut PgConnection,
    envelope: &Envelope<T>,
) -> anyhow::Result<()> {
    let event = Outgoing::here(envelope)?;
    sqlx::query(
        "WITH inserted AS (
             INSERT INTO outbox (id, subject, payload, headers) VALUES ($1, $2, $3, $4)
         )
         SELECT pg_notify($5, '')",
    )
    .bind(event.id)
    .bind(&event.subject)
    .bind(&event.payload)
    .bind(sqlx::types::Json(&event.headers))
    .bind(CHANNEL)
    .execute(conn)
    .await
    .context("cannot write to the outbox")?;
    Ok(())
}

/// Publishes committed outbox rows to JetStream.
#[derive(Debug, Clone)]
pub struct Relay {
    pool: PgPool,
    bus: Bus,
    service: String,
    batch_size: i64,
    poll_interval: Duration,
}

impl Relay {
    pub fn new(pool: PgPool, bus: Bus, service: &str) -> Self {
        let _ = m::handle(); // counters recorded before the recorder exists would be lost
        Relay {
            pool,
            bus,
            service: service.to_owned(),
            batch_size: 256,
            poll_interval: POLL_INTERVAL,
        }
    }

    /// Changes the fallback poll interval (notifications wake the relay sooner).
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Publishes one batch of unsent rows and marks them sent. Returns how many.
    pub async fn relay_once(&self) -> anyhow::Result<usize> {
        self.claim_and_publish(true).await
    }

    /// Publishes one batch and then "crashes": the claim is rolled back, so the rows stay
    /// unsent although JetStream has them. Tests use this to reproduce a relay killed between
    /// publish and mark.
    #[doc(hidden)]
    pub async fn publish_then_crash(&self) -> anyhow::Result<usize> {
        self.claim_and_publish(false).await
    }

    async fn claim_and_publish(&self, mark_sent: bool) -> anyhow::Result<usize> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<Outgoing> = sqlx::query_as(
            "SELECT id, subject, payload, headers FROM outbox
             WHERE sent_at IS NULL ORDER BY seq LIMIT $1
             FOR UPDATE SKIP LOCKED",
        )
        .bind(self.batch_size)
        .fetch_all(&mut *tx)
        .await
        .context("cannot read the outbox")?;
        if rows.is_empty() {
            return Ok(0);
        }
        // Send the whole batch, then wait for every ack: one round trip per batch, not per row.
        let mut acks = Vec::with_capacity(rows.len());
        for row in &rows {
            acks.push(self.bus.send(row).await?);
        }
        try_join_all(acks).await?;
        if !mark_sent {
            tx.rollback().await?;
            return Ok(rows.len());
        }
        let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
        sqlx::query("UPDATE outbox SET sent_at = now() WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        tx.commit().await.context("cannot mark outbox rows sent")?;
        for row in &rows {
            metrics::counter!(m::EVENTS_PUBLISHED, "service" => self.service.clone(), "subject" => row.subject.clone())
                .increment(1);
        }
        Ok(rows.len())
    }

    /// How many events wait to be published.
    pub async fn backlog(&self) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn prune(&self) -> anyhow::Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM outbox WHERE sent_at < now() - interval '{KEEP_SENT}'"
        )))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Relays until `shutdown`: wakes on every committed event (LISTEN/NOTIFY), polls as a
    /// fallback, and keeps retrying with backoff while NATS or PostgreSQL is away.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut listener = self.listen().await;
        let mut failing_since: Option<tokio::time::Instant> = None;
        let mut backoff = Duration::from_millis(100);
        let mut last_prune = tokio::time::Instant::now();
        let backlog = metrics::gauge!(m::OUTBOX_BACKLOG, "service" => self.service.clone());
        while !shutdown.is_cancelled() {
            match self.relay_once().await {
                Ok(sent) => {
                    if let Some(since) = failing_since.take() {
                        tracing::info!(service = %self.service, down_for = ?since.elapsed(), "outbox relay recovered");
                    }
                    backoff = Duration::from_millis(100);
                    if sent as i64 == self.batch_size {
                        continue;
                    }
                    backlog.set(0.0);
                }
                Err(error) => {
                    if failing_since.is_none() {
                        // Once per outage, not once per attempt.
                        tracing::warn!(service = %self.service, error = format!("{error:#}"), "outbox relay cannot publish; events wait in the outbox");
                        failing_since = Some(tokio::time::Instant::now());
                    }
                    if let Ok(n) = self.backlog().await {
                        backlog.set(n as f64);
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    // Capped low: a cluster electing a new stream leader takes publishes
                    // again within moments, and the rows should not wait seconds longer.
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            }
            if last_prune.elapsed() > Duration::from_secs(60) {
                last_prune = tokio::time::Instant::now();
                if let Err(error) = self.prune().await {
                    tracing::debug!(error = format!("{error:#}"), "cannot prune the outbox");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.poll_interval) => {}
                notified = wait_for_notification(&mut listener) => {
                    if !notified {
                        listener = self.listen().await;
                    }
                }
            }
        }
        Ok(())
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = PgListener::connect_with(&self.pool).await.ok()?;
        listener.listen(CHANNEL).await.ok()?;
        Some(listener)
    }
}

/// Waits for a notification; `false` when the listener is gone (the poll keeps things moving).
async fn wait_for_notification(listener: &mut Option<PgListener>) -> bool {
    match listener {
        Some(l) => l.recv().await.is_ok(),
        None => {
            tokio::time::sleep(POLL_INTERVAL).await;
            false
        }
    }
}
