//! Reads, served from the cache; the loaders read PostgreSQL.

use bytes::Bytes;
use uuid::Uuid;

use crate::{app::Tickets, store::tickets};

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
pub async fn list_json(app: &Tickets, limit: i64, before: Option<Uuid>) -> anyhow::Result<Bytes> {
    let pool = app.pool.clone();
    let page = app
        .cache
        .list_page(limit, before, move || async move {
            let mut conn = pool.acquire().await?;
            let tickets = tickets::list_available(&mut conn, limit, before).await?;
            Ok(Some(Bytes::from(
                serde_json::to_vec(&tickets).expect("tickets serialise"),
            )))
        })
        .await?;
    Ok(page.unwrap_or_else(|| Bytes::from_static(b"[]")))
}
