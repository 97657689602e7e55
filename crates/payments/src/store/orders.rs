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
}

#[derive(sqlx::FromRow)]
struct Raw {
    id: Uuid,
    user_id: Uuid,
    price_cents: i64,
    status: String,
    version: i64,
}

impl TryFrom<Raw> for OrderRow {
    type Error = sqlx::Error;

    fn try_from(raw: Raw) -> sqlx::Result<Self> {
        let status = OrderStatus::parse(&raw.status).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "status".into(),
            source: format!("unknown order status {:?}", raw.status).into(),
        })?;
        Ok(OrderRow {
            id: raw.id,
            user_id: raw.user_id,
            price_cents: raw.price_cents,
            status,
            version: raw.version,
        })
    }
}

/// Inserts an order the replica has not seen. `false` if it already knows the id (a
/// redelivered `order.created`): nothing changes then.
pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    user_id: Uuid,
    price_cents: i64,
    status: OrderStatus,
    version: i64,
) -> sqlx::Result<bool> {
    sqlx::query(
        "INSERT INTO orders (id, user_id, price_cents, status, version) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(user_id)
    .bind(price_cents)
    .bind(status.as_str())
    .bind(version)
    .changed_one(conn)
    .await
}

/// Applies `order.cancelled` version `version`, only over `version - 1`. The status becomes
/// 'cancelled' whatever it was: the orders service decides, and a cancellation it made
/// while we were charging (the order expired) wins there too. `false` if the replica is not
/// at `version - 1`.
pub async fn apply_cancellation(
    conn: &mut PgConnection,
    id: Uuid,
    version: i64,
) -> sqlx::Result<bool> {
    sqlx::query(
        "UPDATE orders SET status = 'cancelled', version = $2 WHERE id = $1 AND version = $2 - 1",
    )
    .bind(id)
    .bind(version)
    .changed_one(conn)
    .await
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
    let raw: Option<Raw> = sqlx::query_as(
        "SELECT id, user_id, price_cents, status, version FROM orders WHERE id = $1 FOR UPDATE",
    )
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
