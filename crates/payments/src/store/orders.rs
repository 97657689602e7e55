//! The order replica. Rows change by events, each applied exactly over its predecessor
//! (version n over n-1), and by a successful payment (status 'complete').

use sqlx::PgConnection;
use ticketing_common::db::ChangesOne;
use ticketing_events::OrderStatus;
use uuid::Uuid;

/// What a payment needs to know about an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub price_cents: i64,
    pub status: OrderStatus,
    pub version: i64,
    /// Whether its `expiresAt` has passed, by the database's clock (`false` when the replica
    /// learnt the order before it kept the deadline).
    pub expired: bool,
}

#[derive(sqlx::FromRow)]
struct Raw {
    id: Uuid,
    user_id: Uuid,
    price_cents: i64,
    status: String,
    version: i64,
    expired: bool,
}

/// The columns `Raw` reads.
const COLUMNS: &str = "id, user_id, price_cents, status, version,
    COALESCE(expires_at <= now(), false) AS expired";

impl TryFrom<Raw> for OrderRow {
    type Error = sqlx::Error;

    fn try_from(raw: Raw) -> sqlx::Result<Self> {
        let status = parse_status(&raw.status)?;
        Ok(OrderRow {
            id: raw.id,
            user_id: raw.user_id,
            price_cents: raw.price_cents,
            status,
            version: raw.version,
            expired: raw.expired,
        })
    }
}

/// Inserts an order the replica has not seen, and tells every process waiting for it
/// ([`super::arrivals`]) once the transaction commits. `false` if it already knows the id (a
/// redelivered `order.created`): nothing changes then.
pub async fn insert(conn: &mut PgConnection, order: &NewOrder) -> sqlx::Result<bool> {
    let inserted: Option<bool> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "WITH o AS (
             INSERT INTO orders (id, user_id, price_cents, status, version, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO NOTHING
             RETURNING id
         )
         SELECT true FROM o CROSS JOIN LATERAL (SELECT pg_notify('{}', o.id::text)) AS told",
        super::arrivals::CHANNEL
    )))
    .bind(order.id)
    .bind(order.user_id)
    .bind(order.price_cents)
    .bind(order.status.as_str())
    .bind(order.version)
    .bind(order.expires_at)
    .fetch_optional(conn)
    .await?;
    Ok(inserted.is_some())
}

/// An order as `order.created` tells it.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub id: Uuid,
    pub user_id: Uuid,
    pub price_cents: i64,
    pub status: OrderStatus,
    pub version: i64,
    pub expires_at: time::OffsetDateTime,
}

/// Whether the replica knows an order.
pub async fn exists(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM orders WHERE id = $1)")
        .bind(id)
        .fetch_one(conn)
        .await
}

/// Applies `order.cancelled` version `version`, only over `version - 1`. The status becomes
/// 'cancelled' whatever it was: the orders service decides, and a cancellation it made
/// while we were charging (the order expired) wins there too. Answers the status it had
/// (a 'complete' one was paid here and is refunded), or `None` if the replica is not at
/// `version - 1`.
pub async fn apply_cancellation(
    conn: &mut PgConnection,
    id: Uuid,
    version: i64,
) -> sqlx::Result<Option<OrderStatus>> {
    let before: Option<String> = sqlx::query_scalar(
        "WITH before AS (
             SELECT id, status FROM orders WHERE id = $1 AND version = $2 - 1 FOR UPDATE
         )
         UPDATE orders SET status = 'cancelled', version = $2
         FROM before WHERE orders.id = before.id
         RETURNING before.status",
    )
    .bind(id)
    .bind(version)
    .fetch_optional(conn)
    .await?;
    before.map(|status| parse_status(&status)).transpose()
}

fn parse_status(status: &str) -> sqlx::Result<OrderStatus> {
    OrderStatus::parse(status).ok_or_else(|| sqlx::Error::ColumnDecode {
        index: "status".into(),
        source: format!("unknown order status {status:?}").into(),
    })
}

/// Advances an order to its version `version` (its completion, `order.completed`), only over
/// `version - 1`. The status is this service's own: it completed the order when the charge
/// went through. `false` if the replica is not at `version - 1`.
pub async fn apply_completion(
    conn: &mut PgConnection,
    id: Uuid,
    version: i64,
) -> sqlx::Result<bool> {
    sqlx::query("UPDATE orders SET version = $2 WHERE id = $1 AND version = $2 - 1")
        .bind(id)
        .bind(version)
        .changed_one(conn)
        .await
}

/// Marks a complete order refunded (an operator's refund went through). `false` if it is not
/// complete.
pub async fn refund_if_complete(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<bool> {
    sqlx::query("UPDATE orders SET status = 'refunded' WHERE id = $1 AND status = 'complete'")
        .bind(id)
        .changed_one(conn)
        .await
}

/// An order, unlocked (for reading its payments).
pub async fn find(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<OrderRow>> {
    let raw: Option<Raw> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM orders WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    raw.map(OrderRow::try_from).transpose()
}

/// The replica's version of an order; `None` if unknown.
pub async fn version(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("SELECT version FROM orders WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Reads an order and locks it until the transaction ends: payments of one order, its
/// completion and its cancellation take turns.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<OrderRow>> {
    let raw: Option<Raw> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM orders WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    raw.map(OrderRow::try_from).transpose()
}

/// Marks a live order paid. `false` if it is not live (cancelled, or already complete).
pub async fn complete_if_live(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<bool> {
    sqlx::query(
        "UPDATE orders SET status = 'complete'
         WHERE id = $1 AND status IN ('created', 'awaiting:payment')",
    )
    .bind(id)
    .changed_one(conn)
    .await
}
