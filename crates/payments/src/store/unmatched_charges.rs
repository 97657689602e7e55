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
