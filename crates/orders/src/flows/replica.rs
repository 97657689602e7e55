//! The ticket replica, kept from `ticket.created`, `ticket.updated` and `ticket.withdrawn`
//! in version order.

use anyhow::Context;
use ticketing_common::{
    applied::{Applied, Applying, after_refused_update},
    bus::outbox,
};
use ticketing_events::{Envelope, TicketCreated, TicketUpdated, TicketWithdrawn};

use crate::{
    app::Orders,
    store::{
        orders,
        tickets::{self, ReplicaTicket},
    },
};

/// Learns a new ticket. A duplicate changes nothing.
#[tracing::instrument(skip_all, fields(ticket_id = %ticket.id))]
pub async fn add_ticket(app: &Orders, ticket: &TicketCreated) -> Applying {
    let mut conn = app.pool.acquire().await?;
    if tickets::insert(&mut conn, ticket.into()).await? {
        tracing::info!(version = ticket.version, "ticket learnt");
        Ok(Applied::Now)
    } else {
        tracing::debug!("ticket already known");
        Ok(Applied::Already)
    }
}

/// Applies version n of a ticket over n-1. A version the replica already has (or has passed)
/// is a duplicate or stale and is dropped; a version further ahead, or a ticket not known yet,
/// waits for its predecessors ("not yet", redelivered shortly).
#[tracing::instrument(skip_all, fields(ticket_id = %ticket.id, version = ticket.version))]
pub async fn update_ticket(app: &Orders, ticket: &TicketUpdated) -> Applying {
    let mut conn = app.pool.acquire().await?;
    if tickets::apply_version(&mut conn, ticket.into()).await? {
        tracing::info!("ticket updated");
        return Ok(Applied::Now);
    }
    let known = tickets::version(&mut conn, ticket.id).await?;
    after_refused_update("ticket", known, ticket.version)
}

/// Applies a withdrawal (version n over n-1): the ticket can no longer be ordered, and any
/// order holding it is cancelled and announced. Such an order was placed in the instant
/// before the withdrawal, while tickets had not seen it yet; the withdrawal wins (payments
/// refunds it if it was paid).
#[tracing::instrument(skip_all, fields(ticket_id = %ticket.id, version = ticket.version))]
pub async fn withdraw_ticket(app: &Orders, ticket: &TicketWithdrawn) -> Applying {
    let mut tx = app.pool.begin().await?;
    if !tickets::apply_withdrawal(&mut tx, ticket.id, ticket.version).await? {
        let known = tickets::version(&mut tx, ticket.id).await?;
        return after_refused_update("ticket", known, ticket.version);
    }
    let cancelled = orders::cancel_holding(&mut tx, ticket.id).await?;
    for order in &cancelled {
        outbox::enqueue(&mut tx, &Envelope::new(order.cancelled_event())).await?;
    }
    tx.commit().await.context("cannot commit the withdrawal")?;
    for order in &cancelled {
        tracing::warn!(order_id = %order.id, version = order.version,
            "order cancelled: its ticket was withdrawn in the same instant");
    }
    tracing::info!("ticket withdrawn");
    Ok(Applied::Now)
}

impl<'a> From<&'a TicketCreated> for ReplicaTicket<'a> {
    fn from(t: &'a TicketCreated) -> Self {
        ReplicaTicket {
            id: t.id,
            title: &t.title,
            price: t.price,
            version: t.version,
        }
    }
}

impl<'a> From<&'a TicketUpdated> for ReplicaTicket<'a> {
    fn from(t: &'a TicketUpdated) -> Self {
        ReplicaTicket {
            id: t.id,
            title: &t.title,
            price: t.price,
            version: t.version,
        }
    }
}
