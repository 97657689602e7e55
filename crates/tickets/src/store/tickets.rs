//! The `tickets` and `cancelled_orders` tables. Every change is a conditional update that
//! bumps the version by one, so concurrent writers cannot lose each other's changes.

use sqlx::PgConnection;
use ticketing_common::db::ChangesOne;
use ticketing_events::Cents;
use uuid::Uuid;

use crate::domain::Ticket;

const COLUMNS: &str = "id, title, price_cents, user_id, version, order_id";

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

pub async fn find(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Ticket>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tickets WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
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

/// Tickets nobody holds, newest first, strictly older than `before` when given.
pub async fn list_available(
    conn: &mut PgConnection,
    limit: i64,
    before: Option<Uuid>,
) -> sqlx::Result<Vec<Ticket>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tickets
         WHERE order_id IS NULL AND ($2::uuid IS NULL OR id < $2)
         ORDER BY id DESC LIMIT $1"
    )))
    .bind(limit)
    .bind(before)
    .fetch_all(conn)
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
         WHERE id = $1 AND user_id = $2 AND order_id IS NULL
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(owner)
    .bind(title)
    .bind(price.0)
    .fetch_optional(conn)
    .await
}

/// Reserves a free ticket for an order. `None` if the ticket is unknown or held.
pub async fn reserve_if_free(
    conn: &mut PgConnection,
    id: Uuid,
    order_id: Uuid,
) -> sqlx::Result<Option<Ticket>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE tickets SET order_id = $2, version = version + 1
         WHERE id = $1 AND order_id IS NULL
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
        "UPDATE tickets SET order_id = NULL, version = version + 1
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
