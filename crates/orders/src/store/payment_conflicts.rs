//! The `payment_conflicts` table: payments for orders that were already cancelled.

use sqlx::PgConnection;
use ticketing_common::db::ChangesOne;
use uuid::Uuid;

/// Records a payment for a cancelled order. `false` if this payment was recorded before.
pub async fn record(
    conn: &mut PgConnection,
    payment_id: Uuid,
    order_id: Uuid,
    charge_id: &str,
) -> sqlx::Result<bool> {
    sqlx::query(
        "INSERT INTO payment_conflicts (payment_id, order_id, charge_id) VALUES ($1, $2, $3)
         ON CONFLICT (payment_id) DO NOTHING",
    )
    .bind(payment_id)
    .bind(order_id)
    .bind(charge_id)
    .changed_one(conn)
    .await
}
