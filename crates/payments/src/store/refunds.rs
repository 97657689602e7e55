//! The `refunds` table: one per refunded payment, recorded before the provider is asked.
//! Like payment attempts, each change is one conditional statement, and one caller at a time
//! holds a pending refund's lease while it asks the provider.

use std::time::Duration;

use sqlx::{FromRow, PgConnection};
use ticketing_common::db::ChangesOne;
use uuid::Uuid;

/// Why a refund was made (the `reason` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Reason {
    /// An operator asked: the order becomes `refunded`, its ticket goes back on sale.
    Operator,
    /// The charge landed on an order already cancelled: it stays cancelled.
    CancelledOrder,
}

impl Reason {
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Operator => "operator",
            Reason::CancelledOrder => "cancelled_order",
        }
    }
}

/// Where a refund stands (the `state` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum RefundState {
    /// Recorded; the provider is being asked, or did not answer (asked again, same key).
    Pending,
    /// Money given back. Final.
    Succeeded,
    /// The provider refused; a person must look (an operator may try again).
    Failed,
}

/// A refund as stored.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct RefundRow {
    pub id: Uuid,
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub amount_cents: i64,
    pub reason: Reason,
    pub requested_by: Option<Uuid>,
    pub state: RefundState,
    pub attempt: i32,
    pub provider_refund_id: Option<String>,
    pub failure_message: Option<String>,
    pub last_error: Option<String>,
    pub lease_token: Option<Uuid>,
    /// Whether a caller's lease is running, by the database's clock.
    pub leased: bool,
    pub created_at: time::OffsetDateTime,
}

impl RefundRow {
    /// The provider's idempotency key of this refund's attempt: one refund per payment, so
    /// every retry of attempt n finds the same refund.
    pub fn idempotency_key(&self) -> String {
        if self.attempt <= 1 {
            format!("refund-{}", self.payment_id)
        } else {
            format!("refund-{}:{}", self.payment_id, self.attempt)
        }
    }
}

const COLUMNS: &str = "id, payment_id, order_id, amount_cents, reason, requested_by, state,
    attempt, provider_refund_id, failure_message, last_error, lease_token,
    COALESCE(lease_until > now(), false) AS leased, created_at";

/// A refund to record.
#[derive(Debug, Clone)]
pub struct NewRefund {
    pub id: Uuid,
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub amount_cents: i64,
    pub reason: Reason,
    pub requested_by: Option<Uuid>,
    /// Held by the caller for this long; `None` records it for whoever settles it next.
    pub lease: Option<(Uuid, Duration)>,
}

/// Records a pending refund. `None` if the payment has one already (the caller reads it).
pub async fn insert(
    conn: &mut PgConnection,
    refund: &NewRefund,
) -> sqlx::Result<Option<RefundRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO refunds (id, payment_id, order_id, amount_cents, reason, requested_by,
                              state, lease_token, lease_until)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, now() + make_interval(secs => $8))
         ON CONFLICT (payment_id) DO NOTHING
         RETURNING {COLUMNS}"
    )))
    .bind(refund.id)
    .bind(refund.payment_id)
    .bind(refund.order_id)
    .bind(refund.amount_cents)
    .bind(refund.reason.as_str())
    .bind(refund.requested_by)
    .bind(refund.lease.map(|(token, _)| token))
    .bind(refund.lease.map(|(_, lease)| lease.as_secs_f64()))
    .fetch_optional(conn)
    .await
}

/// A payment's refund, locked until the transaction ends.
pub async fn lock_for_payment(
    conn: &mut PgConnection,
    payment_id: Uuid,
) -> sqlx::Result<Option<RefundRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM refunds WHERE payment_id = $1 FOR UPDATE"
    )))
    .bind(payment_id)
    .fetch_optional(conn)
    .await
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<RefundRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM refunds WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Takes a pending refund nobody holds (a new caller after a lost answer, or the
/// reconciler), or, with `again`, starts the next attempt of a refused one under a new key.
/// `None` if someone holds it or it is settled.
pub async fn take(
    conn: &mut PgConnection,
    id: Uuid,
    lease_token: Uuid,
    lease: Duration,
    again: Option<Uuid>,
) -> sqlx::Result<Option<RefundRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE refunds
         SET lease_token = $2, lease_until = now() + make_interval(secs => $3),
             state = 'pending', updated_at = now(),
             attempt = attempt + CASE WHEN state = 'failed' THEN 1 ELSE 0 END,
             failure_message = CASE WHEN state = 'failed' THEN NULL ELSE failure_message END,
             requested_by = COALESCE($4, requested_by)
         WHERE id = $1
           AND ((state = 'pending' AND COALESCE(lease_until <= now(), true))
                OR (state = 'failed' AND $4 IS NOT NULL))
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(lease_token)
    .bind(lease.as_secs_f64())
    .bind(again)
    .fetch_optional(conn)
    .await
}

/// Records the provider's refund on pending attempt `attempt`. `false` if it is not pending
/// at that attempt any more.
pub async fn mark_succeeded(
    conn: &mut PgConnection,
    id: Uuid,
    attempt: i32,
    provider_refund_id: &str,
) -> sqlx::Result<bool> {
    sqlx::query(
        "UPDATE refunds
         SET state = 'succeeded', provider_refund_id = $3, last_error = NULL,
             lease_token = NULL, lease_until = NULL, updated_at = now()
         WHERE id = $1 AND state = 'pending' AND attempt = $2",
    )
    .bind(id)
    .bind(attempt)
    .bind(provider_refund_id)
    .changed_one(conn)
    .await
}

/// Records that the provider refused the refund (or, from a webhook, that a refund it had
/// accepted failed). `false` if nothing matched.
pub async fn mark_failed(
    conn: &mut PgConnection,
    id: Uuid,
    attempt: Option<i32>,
    message: &str,
) -> sqlx::Result<bool> {
    sqlx::query(
        "UPDATE refunds
         SET state = 'failed', failure_message = $3, lease_token = NULL, lease_until = NULL,
             updated_at = now()
         WHERE id = $1 AND ($2::int IS NULL OR (state = 'pending' AND attempt = $2))",
    )
    .bind(id)
    .bind(attempt)
    .bind(message)
    .changed_one(conn)
    .await
}

/// Pending refunds nobody holds, oldest first: the reconciler settles them.
pub async fn unsettled(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "SELECT id FROM refunds
         WHERE state = 'pending' AND COALESCE(lease_until <= now(), true)
         ORDER BY updated_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The refund holding a provider's refund id, or a payment's refund by its charge.
pub async fn find_by_charge(
    conn: &mut PgConnection,
    charge_id: &str,
) -> sqlx::Result<Option<RefundRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM refunds
         WHERE payment_id = (SELECT id FROM payments WHERE charge_id = $1)"
    )))
    .bind(charge_id)
    .fetch_optional(conn)
    .await
}

/// Refunds the provider refused: for a person to look at.
pub async fn refused(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<RefundRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM refunds WHERE state = 'failed' ORDER BY updated_at DESC LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(conn)
    .await
}
