//! Which events a handler has already applied, for handlers with no entity version to compare.
//!
//! Call [`record`] inside the handler's transaction: it returns `false` when the event was
//! applied before, and the handler then does nothing. The row commits or rolls back with the
//! handler's changes, so "applied" and "recorded" never disagree.

use sqlx::PgConnection;
use uuid::Uuid;

/// Records that `consumer` applied `event_id`. `Ok(false)` means it already had.
pub async fn record(conn: &mut PgConnection, consumer: &str, event_id: Uuid) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO processed_events (event_id, consumer) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(event_id)
    .bind(consumer)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}
