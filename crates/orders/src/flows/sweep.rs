//! The safety sweep: cancels live orders well past their expiry, in case the expiration
//! service lost a job. A lost job can then delay an expiry by the grace period plus one
//! interval, but never prevent it.

use std::time::Duration;

use anyhow::Context;
use ticketing_common::{CancellationToken, bus::outbox};
use ticketing_events::Envelope;

use crate::{app::Orders, store::orders};

/// Counts orders the sweep had to cancel (each one is an expiry the expiration path missed).
pub const ORDERS_SWEPT: &str = "orders_swept_total";

/// Orders cancelled per transaction: short transactions, short row locks.
const BATCH: i64 = 100;

/// Cancels every live order whose `expires_at` is more than `sweep_grace` in the past, batch
/// by batch, each order with its `order.cancelled` in the outbox. Returns how many it
/// cancelled. Replicas may sweep at once: each batch skips rows another one has locked.
#[tracing::instrument(skip_all)]
pub async fn sweep_expired(app: &Orders) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let mut tx = app.pool.begin().await?;
        let cancelled = orders::cancel_overdue(&mut tx, app.sweep_grace, BATCH)
            .await
            .context("cannot claim overdue orders")?;
        for order in &cancelled {
            outbox::enqueue(&mut tx, &Envelope::new(order.cancelled_event())).await?;
        }
        tx.commit().await.context("cannot commit swept orders")?;
        for order in &cancelled {
            tracing::warn!(order_id = %order.id, expires_at = %order.expires_at, "order past its expiry was still live; the sweep cancelled it");
        }
        metrics::counter!(ORDERS_SWEPT).increment(cancelled.len() as u64);
        total += cancelled.len();
        if (cancelled.len() as i64) < BATCH {
            return Ok(total);
        }
    }
}

/// Sweeps every `sweep_interval` until `shutdown`. The first sweep comes one interval after
/// start. A failed sweep is logged and tried again next time; it never stops the process.
pub async fn run_sweep(app: Orders, shutdown: CancellationToken) -> anyhow::Result<()> {
    let interval = app.sweep_interval.max(Duration::from_millis(10));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(interval) => {}
        }
        if let Err(error) = sweep_expired(&app).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "expiry sweep failed; trying again next interval"
            );
        }
    }
}
