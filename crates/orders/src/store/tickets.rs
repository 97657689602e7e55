//! The ticket replica. Rows change only by events, each applied exactly over its predecessor
//! (version n over n-1), so concurrent or repeated deliveries cannot reorder or repeat them.

use sqlx::PgConnection;
use ticketing_events::Cents;
use uuid::Uuid;

/// Inserts a ticket the replica has not seen. `false` if it already knows the id (a
/// redelivered `ticket.created`): nothing changes then.
pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    title: &str,
    price: Cents,
    version: i64,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO tickets (id, title, price_cents, version) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(title)
    .bind(price.0)
    .bind(version)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Applies version `version` of a ticket, only over `version - 1`. `false` if the replica is
/// not at `version - 1` (the caller finds out whether it is ahead or behind).
pub async fn apply_version(
    conn: &mut PgConnection,
    id: Uuid,
    title: &str,
    price: Cents,
    version: i64,
) -> sqlx::Result<bool> {
    let updated = sqlx::query(
        "UPDATE tickets SET title = $2, price_cents = $3, version = $4
         WHERE id = $1 AND version = $4 - 1",
    )
    .bind(id)
    .bind(title)
    .bind(price.0)
    .bind(version)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// The replica's version of a ticket; `None` if unknown.
pub async fn version(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("SELECT version FROM tickets WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}
