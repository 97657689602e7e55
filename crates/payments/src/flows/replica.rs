//! The order replica, kept from `order.created` and `order.cancelled` in version order.

use ticketing_common::applied::{Applied, Applying, after_refused_update};
use ticketing_events::{OrderCancelled, OrderCreated};

use crate::{app::Payments, store::orders};

/// Learns a new order. A duplicate changes nothing.
#[tracing::instrument(skip_all, fields(order_id = %order.id))]
pub async fn add_order(app: &Payments, order: &OrderCreated) -> Applying {
    let mut conn = app.pool.acquire().await?;
    if orders::insert(
        &mut conn,
        order.id,
        order.user_id,
        order.ticket.price.0,
        order.status,
        order.version,
    )
    .await?
    {
        tracing::info!(
            version = order.version,
            price_cents = order.ticket.price.0,
            "order learnt"
        );
        Ok(Applied::Now)
    } else {
        tracing::debug!("order already known");
        Ok(Applied::Already)
    }
}

/// Applies a cancellation, version n over n-1. A version the replica already has (or has
/// passed) is a duplicate or stale and is dropped; a version further ahead, or an order not
/// known yet, waits for its predecessors ("not yet", redelivered shortly).
#[tracing::instrument(skip_all, fields(order_id = %order.id, version = order.version))]
pub async fn cancel_order(app: &Payments, order: &OrderCancelled) -> Applying {
    let mut conn = app.pool.acquire().await?;
    if orders::apply_cancellation(&mut conn, order.id, order.version).await? {
        tracing::info!("order cancelled: it can no longer be paid");
        return Ok(Applied::Now);
    }
    let known = orders::version(&mut conn, order.id).await?;
    after_refused_update("order", known, order.version)
}
