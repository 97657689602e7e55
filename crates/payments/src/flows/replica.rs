//! The order replica, kept from `order.created` and `order.cancelled` in version order.

use ticketing_common::bus::listener::HandlerError;
use ticketing_events::{OrderCancelled, OrderCreated};

use crate::{Payments, store::orders};

/// Learns a new order. A duplicate changes nothing.
#[tracing::instrument(skip_all, fields(order_id = %order.id))]
pub async fn add_order(app: &Payments, order: &OrderCreated) -> Result<(), HandlerError> {
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
    } else {
        tracing::debug!("order already known");
    }
    Ok(())
}

/// Applies a cancellation, version n over n-1. A version the replica already has (or has
/// passed) is a duplicate or stale and is dropped; a version further ahead, or an order not
/// known yet, waits for its predecessors ("not yet", redelivered shortly).
#[tracing::instrument(skip_all, fields(order_id = %order.id, version = order.version))]
pub async fn cancel_order(app: &Payments, order: &OrderCancelled) -> Result<(), HandlerError> {
    let mut conn = app.pool.acquire().await?;
    if orders::apply_cancellation(&mut conn, order.id, order.version).await? {
        tracing::info!("order cancelled: it can no longer be paid");
        return Ok(());
    }
    match orders::version(&mut conn, order.id).await? {
        Some(known) if known >= order.version => {
            tracing::debug!(known, "stale or duplicate cancellation dropped");
            Ok(())
        }
        Some(known) => Err(HandlerError::NotYet(format!(
            "replica at version {known}, waiting for {}",
            order.version - 1
        ))),
        None => Err(HandlerError::NotYet("order not known yet".into())),
    }
}
