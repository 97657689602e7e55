//! Every decision of the tickets service. A write runs in one transaction with its outbox
//! event, then invalidates the cache after the commit.

mod reads;
mod reservations;

pub use reads::{get_ticket_json, list_json, list_owned};
pub use reservations::{release_for_order, reserve_for_order, sell_for_order};
use ticketing_common::bus::outbox;
use ticketing_events::{Cents, Envelope};
use uuid::Uuid;

use crate::{
    app::Tickets,
    domain::{Ticket, Title},
    store::tickets,
};

/// Why an owner's edit or withdrawal was refused.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("Ticket not found")]
    NotFound,
    #[error("Not the ticket's owner")]
    NotOwner,
    #[error("The ticket is reserved or sold")]
    Held,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for UpdateError {
    fn from(error: sqlx::Error) -> Self {
        UpdateError::Unexpected(error.into())
    }
}

/// Lists a new ticket and announces it.
#[tracing::instrument(skip_all, fields(ticket_id = tracing::field::Empty))]
pub async fn create_ticket(
    app: &Tickets,
    owner: Uuid,
    title: Title,
    price: Cents,
) -> anyhow::Result<Ticket> {
    let mut tx = app.pool.begin().await?;
    let ticket = tickets::insert(&mut tx, Uuid::now_v7(), title.as_str(), price, owner).await?;
    outbox::enqueue(&mut tx, &Envelope::new(ticket.created_event())).await?;
    tx.commit().await?;
    tracing::Span::current().record("ticket_id", tracing::field::display(ticket.id));
    app.cache.ticket_added().await;
    tracing::info!("ticket created");
    Ok(ticket)
}

/// Changes a ticket's title and price: the owner's, and only while nobody holds it.
#[tracing::instrument(skip_all, fields(ticket_id = %id))]
pub async fn update_ticket(
    app: &Tickets,
    user: Uuid,
    id: Uuid,
    title: Title,
    price: Cents,
) -> Result<Ticket, UpdateError> {
    let mut tx = app.pool.begin().await?;
    let Some(ticket) = tickets::update_if_free(&mut tx, id, user, title.as_str(), price).await?
    else {
        return Err(why_refused(&mut tx, id, user).await?);
    };
    outbox::enqueue(&mut tx, &Envelope::new(ticket.updated_event())).await?;
    tx.commit().await?;
    app.cache.ticket_changed(id).await;
    tracing::info!(version = ticket.version, "ticket updated");
    Ok(ticket)
}

/// Withdraws a ticket from sale: the owner's, and only while nobody holds it. It answers 404
/// from then on; `ticket.withdrawn` tells orders, which cancels an order placed for it in the
/// same instant (that order had not reached us yet, so the withdrawal wins).
#[tracing::instrument(skip_all, fields(ticket_id = %id))]
pub async fn withdraw_ticket(app: &Tickets, user: Uuid, id: Uuid) -> Result<(), UpdateError> {
    let mut tx = app.pool.begin().await?;
    let Some(ticket) = tickets::withdraw_if_free(&mut tx, id, user).await? else {
        return Err(why_refused(&mut tx, id, user).await?);
    };
    outbox::enqueue(&mut tx, &Envelope::new(ticket.withdrawn_event())).await?;
    tx.commit().await?;
    app.cache.ticket_changed(id).await;
    tracing::info!(version = ticket.version, "ticket withdrawn");
    Ok(())
}

/// Why an owner's conditional change refused, in the contract's order of checks.
async fn why_refused(
    conn: &mut sqlx::PgConnection,
    id: Uuid,
    user: Uuid,
) -> Result<UpdateError, sqlx::Error> {
    Ok(match tickets::find(conn, id).await? {
        None => UpdateError::NotFound,
        Some(ticket) if ticket.user_id != user => UpdateError::NotOwner,
        Some(_) => UpdateError::Held,
    })
}
