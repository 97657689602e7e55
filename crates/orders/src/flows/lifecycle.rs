//! What other services tell us about an order: its time ran out (`expiration.complete`) or it
//! was paid (`payment.created`). Both are conditional updates on the order's status, so a
//! redelivery, or the two racing each other or the buyer's own cancellation, has one outcome.

use anyhow::Context;
use ticketing_common::{
    applied::{Applied, Applying, NotApplied},
    bus::outbox,
};
use ticketing_events::{Envelope, OrderStatus, PaymentCreated};
use uuid::Uuid;

use crate::{
    app::Orders,
    store::{orders, payment_conflicts},
};

/// Counts payments that arrived for an order that was already cancelled: money to refund.
pub const PAYMENTS_FOR_CANCELLED: &str = "orders_payments_for_cancelled_total";

/// How far apart the clocks of Redis (which fires expiry jobs) and of this service may be.
const EXPIRY_CLOCK_TOLERANCE: time::Duration = time::Duration::seconds(5);

/// Cancels an order whose time ran out, if it is still live, and announces it. A paid or
/// already cancelled order is left alone and nothing is announced (a redelivery, or a late
/// job for an order whose ticket someone else may hold by now).
#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn expire_order(app: &Orders, order_id: Uuid) -> Applying {
    let mut tx = app.pool.begin().await?;
    // The job fires on Redis' clock; the window was set on PostgreSQL's. A job that fires
    // well before the order's expiry (clocks apart) waits instead of cancelling early.
    if let Some(order) = orders::find(&mut tx, order_id).await?
        && order.status.is_live()
        && order.expires_at > time::OffsetDateTime::now_utc() + EXPIRY_CLOCK_TOLERANCE
    {
        return Err(NotApplied::TooEarly(format!(
            "order expires at {}",
            order.expires_at
        )));
    }
    if let Some(order) = orders::cancel_if_live(&mut tx, order_id, None).await? {
        outbox::enqueue(&mut tx, &Envelope::new(order.cancelled_event())).await?;
        tx.commit().await.context("cannot commit the expiry")?;
        tracing::info!(version = order.version, "order expired and cancelled");
        return Ok(Applied::Now);
    }
    match orders::find(&mut tx, order_id).await? {
        Some(order) => {
            tracing::info!(
                status = order.status.as_str(),
                "expiry of an order that is no longer live: nothing to do"
            );
            Ok(Applied::Already)
        }
        // Orders are committed here before their event (hence any job) exists, so retrying an
        // unknown id cannot help: it is a bug elsewhere. Parked for a person (and counted as
        // `events_parked_total{reason="unknown"}`).
        None => Err(NotApplied::Unknown(format!(
            "expiry for unknown order {order_id}"
        ))),
    }
}

/// Marks an order paid if it is still live. A payment for a paid order is a redelivery. A
/// payment for a cancelled order keeps the order cancelled (its ticket may belong to someone
/// else by now) and is recorded in `payment_conflicts`, logged as an error and counted, so the
/// money can be given back: never dropped silently.
#[tracing::instrument(skip_all, fields(order_id = %payment.order_id, payment_id = %payment.id))]
pub async fn complete_for_payment(app: &Orders, payment: &PaymentCreated) -> Applying {
    let mut tx = app.pool.begin().await?;
    if let Some(order) = orders::complete_if_live(&mut tx, payment.order_id).await? {
        tx.commit().await.context("cannot commit the payment")?;
        tracing::info!(version = order.version, "order paid");
        return Ok(Applied::Now);
    }
    let Some(order) = orders::find(&mut tx, payment.order_id).await? else {
        return Err(NotApplied::Unknown(format!(
            "payment {} for unknown order {}",
            payment.id, payment.order_id
        )));
    };
    match order.status {
        OrderStatus::Complete => {
            tracing::info!("order already paid: a redelivered payment");
            Ok(Applied::Already)
        }
        OrderStatus::Cancelled => {
            let first_time = payment_conflicts::record(
                &mut tx,
                payment.id,
                payment.order_id,
                &payment.charge_id,
            )
            .await?;
            tx.commit()
                .await
                .context("cannot commit the payment conflict")?;
            if first_time {
                metrics::counter!(PAYMENTS_FOR_CANCELLED).increment(1);
                tracing::error!(
                    charge_id = %payment.charge_id,
                    "payment for a cancelled order: the order stays cancelled; recorded in payment_conflicts for a refund"
                );
                Ok(Applied::Now)
            } else {
                tracing::info!("payment for a cancelled order already recorded");
                Ok(Applied::Already)
            }
        }
        // The conditional update would have matched a live order; it changed in between
        // (cancelled by now), so look again.
        OrderStatus::Created | OrderStatus::AwaitingPayment => Err(NotApplied::TooEarly(
            "order changed while the payment was applied".into(),
        )),
    }
}
