//! Reads, served from the cache; the loaders read PostgreSQL.

use bytes::Bytes;
use uuid::Uuid;

use crate::{
    app::Tickets,
    domain::{Cursor, Ticket},
    store::tickets,
};

/// One ticket's JSON, reserved and sold tickets included; `None` if unknown.
pub async fn get_ticket_json(app: &Tickets, id: Uuid) -> anyhow::Result<Option<Bytes>> {
    let pool = app.pool.clone();
    app.cache
        .ticket(id, move || async move {
            let mut conn = pool.acquire().await?;
            let ticket = tickets::find(&mut conn, id).await?;
            Ok(ticket.map(|ticket| {
                Bytes::from(serde_json::to_vec(&ticket).expect("a ticket serialises"))
            }))
        })
        .await
}

/// One page of available tickets, newest first, as JSON.
pub async fn list_json(app: &Tickets, limit: i64, cursor: Option<Cursor>) -> anyhow::Result<Bytes> {
    let pool = app.pool.clone();
    let page = app
        .cache
        .list_page(limit, cursor, move || async move {
            let mut conn = pool.acquire().await?;
            let tickets = tickets::list_available(&mut conn, limit, cursor).await?;
            Ok(Some(Bytes::from(
                serde_json::to_vec(&tickets).expect("tickets serialise"),
            )))
        })
        .await?;
    Ok(page.unwrap_or_else(|| Bytes::from_static(b"[]")))
}

/// One page of a seller's own listings in every state, newest first. Read from PostgreSQL:
/// each seller reads only their own, and wants to see a sale at once.
pub async fn list_owned(
    app: &Tickets,
    owner: Uuid,
    limit: i64,
    cursor: Option<Cursor>,
) -> anyhow::Result<Vec<Ticket>> {
    let mut conn = app.pool.acquire().await?;
    Ok(tickets::list_owned(&mut conn, owner, limit, cursor).await?)
}
