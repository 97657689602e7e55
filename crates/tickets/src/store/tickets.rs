//! The `tickets` and `cancelled_orders` tables. Every change is a conditional update that
//! bumps the version by one, so concurrent writers cannot lose each other's changes. A
//! withdrawn ticket keeps its row, but no read here returns it and no update touches it.

use sqlx::PgConnection;
use ticketing_common::db::ChangesOne;
use ticketing_events::Cents;
use uuid::Uuid;

use crate::domain::{Cursor, Ticket};

/// A ticket's columns as [`Ticket`] reads them, its status derived from the order holding it.
const COLUMNS: &str = "id, title, price_cents, user_id, version, order_id,
    CASE WHEN order_id IS NULL THEN 'available' WHEN sold THEN 'sold' ELSE 'reserved' END
        AS status";

/// Tickets still listed (not withdrawn).
const LISTED: &str = "withdrawn_at IS NULL";

pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    title: &str,
    price: Cents,
    user_id: Uuid,
) -> sqlx::Result<Ticket> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO tickets (id, title, price_cents, user_id) VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(title)
    .bind(price.0)
    .bind(user_id)
    .fetch_one(conn)
    .await
}

/// A listed ticket; `None` if unknown or withdrawn.
pub async fn find(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Ticket>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tickets WHERE id = $1 AND {LISTED}"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Whether the ticket existed and was withdrawn.
pub async fn is_withdrawn(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM tickets WHERE id = $1 AND withdrawn_at IS NOT NULL)",
    )
    .bind(id)
    .fetch_one(conn)
    .await
}

/// Locks a ticket's row until the transaction ends (nothing if there is no such ticket), so
/// that flows deciding about one ticket take turns.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("SELECT 1 FROM tickets WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(conn)
        .await
        .map(drop)
}

/// One page of the listed tickets matching `filter` (SQL over the ticket's columns, `$3`
/// its only parameter), newest first: the first page, the `limit` tickets older than the
/// cursor, or the `limit` tickets just newer than it (read oldest first, then turned round).
async fn page(
    conn: &mut PgConnection,
    filter: &'static str,
    filter_arg: Option<Uuid>,
    limit: i64,
    cursor: Option<Cursor>,
) -> sqlx::Result<Vec<Ticket>> {
    let sql = match cursor {
        None | Some(Cursor::Before(_)) => format!(
            "SELECT {COLUMNS} FROM tickets
             WHERE {LISTED} AND {filter} AND ($2::uuid IS NULL OR id < $2)
             ORDER BY id DESC LIMIT $1"
        ),
        Some(Cursor::After(_)) => format!(
            "SELECT * FROM (
                 SELECT {COLUMNS} FROM tickets
                 WHERE {LISTED} AND {filter} AND id > $2
                 ORDER BY id ASC LIMIT $1
             ) newer ORDER BY id DESC"
        ),
    };
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(limit)
        .bind(cursor.map(Cursor::id))
        .bind(filter_arg)
        .fetch_all(conn)
        .await
}

/// Tickets nobody holds, newest first, paged by `cursor`.
pub async fn list_available(
    conn: &mut PgConnection,
    limit: i64,
    cursor: Option<Cursor>,
) -> sqlx::Result<Vec<Ticket>> {
    page(
        conn,
        "order_id IS NULL AND $3::uuid IS NULL",
        None,
        limit,
        cursor,
    )
    .await
}

/// A seller's listed tickets in every state, newest first, paged by `cursor`.
pub async fn list_owned(
    conn: &mut PgConnection,
    owner: Uuid,
    limit: i64,
    cursor: Option<Cursor>,
) -> sqlx::Result<Vec<Ticket>> {
    page(conn, "user_id = $3", Some(owner), limit, cursor).await
}

/// Withdraws a ticket the user owns and nobody holds, bumping its version. `None` when any
/// of that is not so (the caller finds out which).
pub async fn withdraw_if_free(
    conn: &mut PgConnection,
    id: Uuid,
    owner: Uuid,
) -> sqlx::Result<Option<Ticket>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE tickets SET withdrawn_at = now(), version = version + 1
         WHERE id = $1 AND user_id = $2 AND order_id IS NULL AND {LISTED}
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(owner)
    .fetch_optional(conn)
    .await
}

/// Marks a ticket sold, if that very order holds it and it is not sold yet.
pub async fn sell_if_held_by(
    conn: &mut PgConnection,
    id: Uuid,
    order_id: Uuid,
) -> sqlx::Result<Option<Ticket>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE tickets SET sold = true, version = version + 1
         WHERE id = $1 AND order_id = $2 AND NOT sold AND {LISTED}
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(order_id)
    .fetch_optional(conn)
    .await
}

/// Changes title and price of a ticket the user owns and nobody holds. `None` when any of
/// that is not so (the caller finds out which).
pub async fn update_if_free(
    conn: &mut PgConnection,
    id: Uuid,
    owner: Uuid,
    title: &str,
    price: Cents,
) -> sqlx::Result<Option<Ticket>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE tickets SET title = $3, price_cents = $4, version = version + 1
         WHERE id = $1 AND user_id = $2 AND order_id IS NULL AND {LISTED}
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(owner)
    .bind(title)
    .bind(price.0)
    .fetch_optional(conn)
    .await
}

/// Reserves a free ticket for an order. `None` if the ticket is unknown, withdrawn or held.
pub async fn reserve_if_free(
    conn: &mut PgConnection,
    id: Uuid,
    order_id: Uuid,
) -> sqlx::Result<Option<Ticket>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE tickets SET order_id = $2, version = version + 1
         WHERE id = $1 AND order_id IS NULL AND {LISTED}
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(order_id)
    .fetch_optional(conn)
    .await
}

/// Releases a ticket only if that very order holds it. `None` otherwise.
pub async fn release_if_held_by(
    conn: &mut PgConnection,
    id: Uuid,
    order_id: Uuid,
) -> sqlx::Result<Option<Ticket>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE tickets SET order_id = NULL, sold = false, version = version + 1
         WHERE id = $1 AND order_id = $2
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(order_id)
    .fetch_optional(conn)
    .await
}

/// Remembers a cancelled order. `false` if it was already known.
pub async fn remember_cancelled(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<bool> {
    sqlx::query("INSERT INTO cancelled_orders (order_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(order_id)
        .changed_one(conn)
        .await
}

pub async fn is_cancelled(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM cancelled_orders WHERE order_id = $1)")
        .bind(order_id)
        .fetch_one(conn)
        .await
}
