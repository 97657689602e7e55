//! Reservations driven by order events. Each is idempotent and safe in any arrival order.

use ticketing_common::{
    applied::{Applied, Applying, NotApplied},
    bus::outbox,
};
use ticketing_events::Envelope;
use uuid::Uuid;

use crate::{app::Tickets, store::tickets};

/// Reserves the ticket for an order (`order.created`). A redelivery changes nothing; an order
/// already known to be cancelled is ignored; a ticket still held by another order is "not yet"
/// (that order's cancellation is on its way).
#[tracing::instrument(skip_all, fields(ticket_id = %ticket_id, order_id = %order_id))]
pub async fn reserve_for_order(app: &Tickets, ticket_id: Uuid, order_id: Uuid) -> Applying {
    let mut tx = app.pool.begin().await?;
    // Take turns with `release_for_order` on this ticket: otherwise a cancellation committing
    // between our `is_cancelled` and our reservation (it found the ticket still free, so it
    // released nothing) leaves the ticket held by a cancelled order forever.
    tickets::lock(&mut tx, ticket_id).await?;
    if tickets::is_cancelled(&mut tx, order_id).await? {
        tracing::info!("order was cancelled before its creation arrived; ticket stays free");
        return Ok(Applied::Already);
    }
    let Some(ticket) = tickets::reserve_if_free(&mut tx, ticket_id, order_id).await? else {
        return match tickets::find(&mut tx, ticket_id).await? {
            Some(ticket) if ticket.order_id == Some(order_id) => Ok(Applied::Already), // a redelivery
            Some(ticket) => Err(NotApplied::TooEarly(format!(
                "ticket held by order {:?}; waiting for its release",
                ticket.order_id
            ))),
            // The seller withdrew it before this order arrived: the withdrawal wins, and
            // orders cancels the order when `ticket.withdrawn` reaches it.
            None if tickets::is_withdrawn(&mut tx, ticket_id).await? => {
                tracing::info!("order for a withdrawn ticket; it stays withdrawn");
                Ok(Applied::Already)
            }
            None => Err(NotApplied::Unknown(format!(
                "order for unknown ticket {ticket_id}"
            ))),
        };
    };
    outbox::enqueue(&mut tx, &Envelope::new(ticket.updated_event())).await?;
    tx.commit().await?;
    app.cache.ticket_changed(ticket_id).await;
    tracing::info!(version = ticket.version, "ticket reserved");
    Ok(Applied::Now)
}

/// Releases the ticket if that very order holds it (`order.cancelled`), and remembers the
/// cancellation so a late `order.created` of the same order cannot reserve it again.
#[tracing::instrument(skip_all, fields(ticket_id = %ticket_id, order_id = %order_id))]
pub async fn release_for_order(app: &Tickets, ticket_id: Uuid, order_id: Uuid) -> Applying {
    let mut tx = app.pool.begin().await?;
    tickets::lock(&mut tx, ticket_id).await?; // see `reserve_for_order`
    tickets::remember_cancelled(&mut tx, order_id).await?;
    let released = tickets::release_if_held_by(&mut tx, ticket_id, order_id).await?;
    if let Some(ticket) = &released {
        outbox::enqueue(&mut tx, &Envelope::new(ticket.updated_event())).await?;
    }
    tx.commit().await?;
    let Some(ticket) = released else {
        return Ok(Applied::Already);
    };
    app.cache.ticket_changed(ticket_id).await;
    tracing::info!(version = ticket.version, "ticket released");
    Ok(Applied::Now)
}

/// Marks the ticket sold once the order holding it is paid (`order.completed`). A completion
/// that overtook its order's creation waits for it ("too early"); one for an order since
/// cancelled or refunded, or for a withdrawn ticket, changes nothing.
#[tracing::instrument(skip_all, fields(ticket_id = %ticket_id, order_id = %order_id))]
pub async fn sell_for_order(app: &Tickets, ticket_id: Uuid, order_id: Uuid) -> Applying {
    let mut tx = app.pool.begin().await?;
    tickets::lock(&mut tx, ticket_id).await?; // see `reserve_for_order`
    if let Some(ticket) = tickets::sell_if_held_by(&mut tx, ticket_id, order_id).await? {
        outbox::enqueue(&mut tx, &Envelope::new(ticket.updated_event())).await?;
        tx.commit().await?;
        app.cache.ticket_changed(ticket_id).await;
        tracing::info!(version = ticket.version, "ticket sold");
        return Ok(Applied::Now);
    }
    if tickets::is_cancelled(&mut tx, order_id).await? {
        tracing::info!("completion of an order since cancelled or refunded: nothing to do");
        return Ok(Applied::Already);
    }
    match tickets::find(&mut tx, ticket_id).await? {
        Some(ticket) if ticket.order_id == Some(order_id) => Ok(Applied::Already), // a redelivery
        Some(_) => Err(NotApplied::TooEarly(
            "the order's creation has not reserved the ticket yet".into(),
        )),
        None if tickets::is_withdrawn(&mut tx, ticket_id).await? => Ok(Applied::Already),
        None => Err(NotApplied::Unknown(format!(
            "completed order for unknown ticket {ticket_id}"
        ))),
    }
}
