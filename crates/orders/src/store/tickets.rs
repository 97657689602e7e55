//! The ticket replica. Rows change only by events, each applied exactly over its predecessor
//! (version n over n-1), so concurrent or repeated deliveries cannot reorder or repeat them.

use sqlx::PgConnection;
use ticketing_common::db::ChangesOne;
use ticketing_events::Cents;
use uuid::Uuid;

/// A ticket as the replica keeps it (what `ticket.created` and `ticket.updated` carry).
#[derive(Debug, Clone, Copy)]
pub struct ReplicaTicket<'a> {
    pub id: Uuid,
    pub title: &'a str,
    pub price: Cents,
    pub version: i64,
}

/// Runs `sql` with the ticket's id, title, price and version as `$1`..`$4`.
async fn write(
    conn: &mut PgConnection,
    sql: &'static str,
    ticket: ReplicaTicket<'_>,
) -> sqlx::Result<bool> {
    sqlx::query(sql)
        .bind(ticket.id)
        .bind(ticket.title)
        .bind(ticket.price.0)
        .bind(ticket.version)
        .changed_one(conn)
        .await
}

/// Inserts a ticket the replica has not seen. `false` if it already knows the id (a
/// redelivered `ticket.created`): nothing changes then.
pub async fn insert(conn: &mut PgConnection, ticket: ReplicaTicket<'_>) -> sqlx::Result<bool> {
    let sql = "INSERT INTO tickets (id, title, price_cents, version) VALUES ($1, $2, $3, $4)
               ON CONFLICT (id) DO NOTHING";
    write(conn, sql, ticket).await
}

/// Applies a ticket's next version, only over `version - 1`. `false` if the replica is not
/// at `version - 1` (the caller finds out whether it is ahead or behind).
pub async fn apply_version(
    conn: &mut PgConnection,
    ticket: ReplicaTicket<'_>,
) -> sqlx::Result<bool> {
    let sql = "UPDATE tickets SET title = $2, price_cents = $3, version = $4
               WHERE id = $1 AND version = $4 - 1";
    write(conn, sql, ticket).await
}

/// The replica's version of a ticket; `None` if unknown.
pub async fn version(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("SELECT version FROM tickets WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Marks a ticket withdrawn, as its version `version`, only over `version - 1`. `false` if
/// the replica is not at `version - 1`.
pub async fn apply_withdrawal(
    conn: &mut PgConnection,
    id: Uuid,
    version: i64,
) -> sqlx::Result<bool> {
    sqlx::query(
        "UPDATE tickets SET withdrawn = true, version = $2 WHERE id = $1 AND version = $2 - 1",
    )
    .bind(id)
    .bind(version)
    .changed_one(conn)
    .await
}
