//! What other services tell us about an order: its time ran out (`expiration.complete`), it
//! was paid (`payment.created`) or refunded (`payment.refunded`). Each is a conditional update
//! on the order's status, so a redelivery, or two racing each other or the buyer's own
//! cancellation, has one outcome.

use anyhow::Context;
use ticketing_common::{
    applied::{Applied, Applying, NotApplied},
    bus::outbox,
};
use ticketing_events::{Envelope, OrderStatus, PaymentCreated, PaymentRefunded};
use uuid::Uuid;

use crate::{app::Orders, store::orders};

/// Counts payments that arrived for an order that was already cancelled (payments refunds
/// them).
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

/// Marks an order paid if it is still live, and announces it (tickets marks the ticket
/// sold). A payment for a paid order is a redelivery. A
/// payment for a cancelled order keeps the order cancelled (its ticket may belong to someone
/// else by now): payments refunds that charge itself, so it is only logged and counted here.
#[tracing::instrument(skip_all, fields(order_id = %payment.order_id, payment_id = %payment.id))]
pub async fn complete_for_payment(app: &Orders, payment: &PaymentCreated) -> Applying {
    let mut tx = app.pool.begin().await?;
    if let Some(order) = orders::complete_if_live(&mut tx, payment.order_id).await? {
        outbox::enqueue(&mut tx, &Envelope::new(order.completed_event())).await?;
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
        OrderStatus::Complete | OrderStatus::Refunded => {
            tracing::info!("order already paid: a redelivered payment");
            Ok(Applied::Already)
        }
        OrderStatus::Cancelled => {
            metrics::counter!(PAYMENTS_FOR_CANCELLED).increment(1);
            tracing::warn!(
                charge_id = %payment.charge_id,
                "payment for a cancelled order: the order stays cancelled; payments refunds the charge"
            );
            Ok(Applied::Already)
        }
        // The conditional update would have matched a live order; it changed in between
        // (cancelled by now), so look again.
        OrderStatus::Created | OrderStatus::AwaitingPayment => Err(NotApplied::TooEarly(
            "order changed while the payment was applied".into(),
        )),
    }
}

/// Marks a paid order refunded (an operator refunded its payment) and announces it, so that
/// tickets puts the ticket back on sale. A refund of a cancelled order is the automatic
/// refund of a payment that came too late: the order stays cancelled and nothing is
/// announced. A refund before its payment arrived waits for it.
#[tracing::instrument(skip_all, fields(order_id = %refund.order_id, refund_id = %refund.id))]
pub async fn refund_for_payment(app: &Orders, refund: &PaymentRefunded) -> Applying {
    let mut tx = app.pool.begin().await?;
    if let Some(order) = orders::refund_if_complete(&mut tx, refund.order_id).await? {
        outbox::enqueue(&mut tx, &Envelope::new(order.refunded_event())).await?;
        tx.commit().await.context("cannot commit the refund")?;
        tracing::info!(version = order.version, "order refunded");
        return Ok(Applied::Now);
    }
    let Some(order) = orders::find(&mut tx, refund.order_id).await? else {
        return Err(NotApplied::Unknown(format!(
            "refund {} for unknown order {}",
            refund.id, refund.order_id
        )));
    };
    match order.status {
        OrderStatus::Refunded => Ok(Applied::Already),
        OrderStatus::Cancelled => {
            tracing::info!(
                "refund of a payment that came after the cancellation; the order stays cancelled"
            );
            Ok(Applied::Already)
        }
        OrderStatus::Created | OrderStatus::AwaitingPayment => Err(NotApplied::TooEarly(
            "refund before its payment arrived".into(),
        )),
        OrderStatus::Complete => Err(NotApplied::TooEarly(
            "order changed while the refund was applied".into(),
        )),
    }
}
