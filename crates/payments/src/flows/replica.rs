//! The order replica, kept from `order.created`, `order.completed` and `order.cancelled` in
//! version order.

use anyhow::Context;
use ticketing_common::applied::{Applied, Applying, after_refused_update};
use ticketing_events::{OrderCancelled, OrderCompleted, OrderCreated, OrderStatus};

use super::refund::{auto_refund, settle_in_background};
use crate::{
    app::Payments,
    domain::PaymentState,
    store::{
        orders::{self, NewOrder},
        payments,
    },
};

/// Learns a new order (waking any payment request waiting for it). A duplicate changes
/// nothing.
#[tracing::instrument(skip_all, fields(order_id = %order.id))]
pub async fn add_order(app: &Payments, order: &OrderCreated) -> Applying {
    let mut conn = app.pool.acquire().await?;
    let new = NewOrder {
        id: order.id,
        user_id: order.user_id,
        price_cents: order.ticket.price.0,
        status: order.status,
        version: order.version,
        expires_at: order.expires_at,
    };
    if orders::insert(&mut conn, &new).await? {
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

/// Applies a completion, version n over n-1, so that the replica's versions keep step with
/// the order's (a paid order can still be cancelled: its ticket was withdrawn in the instant
/// it was ordered). A duplicate or stale version is dropped; one further ahead waits.
#[tracing::instrument(skip_all, fields(order_id = %order.id, version = order.version))]
pub async fn complete_order(app: &Payments, order: &OrderCompleted) -> Applying {
    let mut conn = app.pool.acquire().await?;
    if orders::apply_completion(&mut conn, order.id, order.version).await? {
        tracing::info!("order completion recorded");
        return Ok(Applied::Now);
    }
    let known = orders::version(&mut conn, order.id).await?;
    after_refused_update("order", known, order.version)
}

/// Applies a cancellation, version n over n-1. A version the replica already has (or has
/// passed) is a duplicate or stale and is dropped; a version further ahead, or an order not
/// known yet, waits for its predecessors ("not yet", redelivered shortly). An order that was
/// paid here meanwhile (the cancellation and the payment crossed) stays cancelled, and its
/// charge is refunded.
#[tracing::instrument(skip_all, fields(order_id = %order.id, version = order.version))]
pub async fn cancel_order(app: &Payments, order: &OrderCancelled) -> Applying {
    let mut tx = app.pool.begin().await?;
    let Some(before) = orders::apply_cancellation(&mut tx, order.id, order.version).await? else {
        let known = orders::version(&mut tx, order.id).await?;
        return after_refused_update("order", known, order.version);
    };
    let refund = match payments::lock_for_order(&mut tx, order.id).await? {
        Some(payment)
            if before == OrderStatus::Complete && payment.state == PaymentState::Succeeded =>
        {
            auto_refund(&mut tx, &payment).await?
        }
        _ => None,
    };
    tx.commit()
        .await
        .context("cannot commit the cancellation")?;
    match refund {
        Some(refund_id) => {
            tracing::warn!(%refund_id, "order cancelled after it was paid here: its charge is refunded");
            settle_in_background(app, refund_id);
        }
        None => tracing::info!("order cancelled: it can no longer be paid"),
    }
    Ok(Applied::Now)
}
