//! The ticket replica, kept from `ticket.created` and `ticket.updated` in version order.

use ticketing_common::bus::listener::HandlerError;
use ticketing_events::{TicketCreated, TicketUpdated};

use crate::{Orders, store::tickets};

/// Learns a new ticket. A duplicate changes nothing.
#[tracing::instrument(skip_all, fields(ticket_id = %ticket.id))]
pub async fn add_ticket(app: &Orders, ticket: &TicketCreated) -> Result<(), HandlerError> {
    let mut conn = app.pool.acquire().await?;
    if tickets::insert(
        &mut conn,
        ticket.id,
        &ticket.title,
        ticket.price,
        ticket.version,
    )
    .await?
    {
        tracing::info!(version = ticket.version, "ticket learnt");
    } else {
        tracing::debug!("ticket already known");
    }
    Ok(())
}

/// Applies version n of a ticket over n-1. A version the replica already has (or has passed)
/// is a duplicate or stale and is dropped; a version further ahead, or a ticket not known yet,
/// waits for its predecessors ("not yet", redelivered shortly).
#[tracing::instrument(skip_all, fields(ticket_id = %ticket.id, version = ticket.version))]
pub async fn update_ticket(app: &Orders, ticket: &TicketUpdated) -> Result<(), HandlerError> {
    let mut conn = app.pool.acquire().await?;
    if tickets::apply_version(
        &mut conn,
        ticket.id,
        &ticket.title,
        ticket.price,
        ticket.version,
    )
    .await?
    {
        tracing::info!("ticket updated");
        return Ok(());
    }
    match tickets::version(&mut conn, ticket.id).await? {
        Some(known) if known >= ticket.version => {
            tracing::debug!(known, "stale or duplicate ticket version dropped");
            Ok(())
        }
        Some(known) => Err(HandlerError::NotYet(format!(
            "replica at version {known}, waiting for {}",
            ticket.version - 1
        ))),
        None => Err(HandlerError::NotYet("ticket not known yet".into())),
    }
}
