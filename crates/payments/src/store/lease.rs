//! What payment attempts and refunds share: one caller at a time holds a pending row's lease
//! while it asks the provider, and lets go when the provider gave no answer.

use sqlx::PgConnection;
use ticketing_common::db::ChangesOne;
use uuid::Uuid;

/// A table whose pending rows are leased: `payments` (attempts) or `refunds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leased {
    Payments,
    Refunds,
}

impl Leased {
    const fn table(self) -> &'static str {
        match self {
            Leased::Payments => "payments",
            Leased::Refunds => "refunds",
        }
    }
}

/// Lets go of a pending row whose provider call got no answer, recording why, so the next
/// caller (a request, the reconciler) asks again at once under the same key; only the
/// lease's holder can. `false` if someone else holds it by now.
pub async fn release(
    conn: &mut PgConnection,
    leased: Leased,
    id: Uuid,
    lease_token: Uuid,
    error: &str,
) -> sqlx::Result<bool> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {}
         SET lease_until = now(), last_error = $3, updated_at = now()
         WHERE id = $1 AND state = 'pending' AND lease_token = $2",
        leased.table()
    )))
    .bind(id)
    .bind(lease_token)
    .bind(error)
    .changed_one(conn)
    .await
}
