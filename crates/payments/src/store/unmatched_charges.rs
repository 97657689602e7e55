//! The `unmatched_charges` table: money taken that no payment holds, kept for a refund.

use sqlx::PgConnection;
use ticketing_common::db::ChangesOne;
use uuid::Uuid;

/// Records a charge no payment can hold. `false` if it was recorded before (a replayed
/// webhook).
pub async fn record(
    conn: &mut PgConnection,
    charge_id: &str,
    order_id: Option<Uuid>,
    amount: Option<i64>,
    reason: &str,
) -> sqlx::Result<bool> {
    sqlx::query(
        "INSERT INTO unmatched_charges (charge_id, order_id, amount, reason) VALUES ($1, $2, $3, $4)
         ON CONFLICT (charge_id) DO NOTHING",
    )
    .bind(charge_id)
    .bind(order_id)
    .bind(amount)
    .bind(reason)
    .changed_one(conn)
    .await
}

/// A charge no payment holds, as kept.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UnmatchedCharge {
    pub charge_id: String,
    pub order_id: Option<Uuid>,
    pub amount: Option<i64>,
    pub reason: String,
    pub recorded_at: time::OffsetDateTime,
}

/// The latest `limit` unmatched charges, newest first.
pub async fn latest(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<UnmatchedCharge>> {
    sqlx::query_as(
        "SELECT charge_id, order_id, amount, reason, recorded_at FROM unmatched_charges
         ORDER BY recorded_at DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}
