//! The ticket replica, kept from `ticket.created` and `ticket.updated` in version order.

use ticketing_common::applied::{Applied, Applying, after_refused_update};
use ticketing_events::{TicketCreated, TicketUpdated};

use crate::{
    app::Orders,
    store::tickets::{self, ReplicaTicket},
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
