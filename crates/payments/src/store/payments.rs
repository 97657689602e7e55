//! The `payments` table: one row per order, holding its latest attempt. Every change is one
//! conditional statement whose condition is the rule ("only the pending attempt n", "only
//! the holder of the lease"); a caller that wants to know why nothing changed reads
//! afterwards.

use std::time::Duration;

use sqlx::{PgConnection, Postgres, postgres::PgArguments, query::QueryAs};
use ticketing_common::db::ChangesOne;
use uuid::Uuid;

use crate::{
    domain::{Payment, PaymentState},
    provider::Card,
};

/// The columns `Payment`'s `FromRow` reads. `leased` is computed with the database's clock,
/// the one every replica shares.
const COLUMNS: &str = "id, order_id, user_id, state, attempt, provider, amount_cents, currency,
    token, charge_id, failure_message, last_error, lease_token,
    COALESCE(lease_until > now(), false) AS leased, card_brand, card_last4, created_at";

/// What a new attempt charges, and who holds it.
#[derive(Debug, Clone)]
pub struct NewAttempt<'a> {
    /// The buyer (the order's owner).
    pub user_id: Uuid,
    pub provider: &'a str,
    pub amount_cents: i64,
    pub currency: &'a str,
    pub token: &'a str,
    pub lease_token: Uuid,
    pub lease: Duration,
}

/// Binds an attempt's provider, amount, currency, token, lease token, lease (seconds) and
/// buyer, in that order, after the parameters already bound.
trait BindAttempt<'q> {
    fn bind_attempt(self, attempt: &NewAttempt<'q>) -> Self;
}

impl<'q, O> BindAttempt<'q> for QueryAs<'q, Postgres, O, PgArguments> {
    fn bind_attempt(self, attempt: &NewAttempt<'q>) -> Self {
        self.bind(attempt.provider)
            .bind(attempt.amount_cents)
            .bind(attempt.currency)
            .bind(attempt.token)
            .bind(attempt.lease_token)
            .bind(attempt.lease.as_secs_f64())
            .bind(attempt.user_id)
    }
}

/// Records an order's first attempt, pending and held by the caller. `None` if the order
/// has a payment already (the caller reads it).
pub async fn insert_first_attempt(
    conn: &mut PgConnection,
    id: Uuid,
    order_id: Uuid,
    attempt: &NewAttempt<'_>,
) -> sqlx::Result<Option<Payment>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO payments (id, order_id, state, attempt, provider, amount_cents, currency,
                               token, lease_token, lease_until, user_id)
         VALUES ($1, $2, 'pending', 1, $3, $4, $5, $6, $7, now() + make_interval(secs => $8),
                 $9)
         ON CONFLICT (order_id) DO NOTHING
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(order_id)
    .bind_attempt(attempt)
    .fetch_optional(conn)
    .await
}

/// The payment `filter` picks: a condition on `$1`, with a lock clause if wanted.
async fn one_where(
    conn: &mut PgConnection,
    filter: &'static str,
    value: Uuid,
) -> sqlx::Result<Option<Payment>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE {filter}"
    )))
    .bind(value)
    .fetch_optional(conn)
    .await
}

/// An order's payment, locked until the transaction ends.
pub async fn lock_for_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> sqlx::Result<Option<Payment>> {
    one_where(conn, "order_id = $1 FOR UPDATE", order_id).await
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Payment>> {
    one_where(conn, "id = $1", id).await
}

pub async fn find_by_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> sqlx::Result<Option<Payment>> {
    one_where(conn, "order_id = $1", order_id).await
}

/// Gives a pending attempt whose holder is gone to a new holder; the attempt, its key and
/// its parameters stay the same. The caller has locked the row and seen the lease run out.
pub async fn take_over(
    conn: &mut PgConnection,
    id: Uuid,
    lease_token: Uuid,
    lease: Duration,
) -> sqlx::Result<Payment> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE payments
         SET lease_token = $2, lease_until = now() + make_interval(secs => $3),
             last_error = NULL, updated_at = now()
         WHERE id = $1 AND state = 'pending'
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(lease_token)
    .bind(lease.as_secs_f64())
    .fetch_one(conn)
    .await
}

/// Starts the next attempt after a refused one, pending and held by the caller. The caller
/// has locked the row and seen it declined or failed.
pub async fn start_next_attempt(
    conn: &mut PgConnection,
    id: Uuid,
    attempt: &NewAttempt<'_>,
) -> sqlx::Result<Payment> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE payments
         SET state = 'pending', attempt = attempt + 1, provider = $2, amount_cents = $3,
             currency = $4, token = $5, charge_id = NULL, failure_message = NULL,
             last_error = NULL, lease_token = $6,
             lease_until = now() + make_interval(secs => $7), user_id = $8, updated_at = now()
         WHERE id = $1 AND state IN ('declined', 'failed')
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind_attempt(attempt)
    .fetch_one(conn)
    .await
}

/// Records a charge over anything but a payment that already succeeded: once the money has
/// moved, it is recorded whatever we thought (pending, processing, even declined). `None` if
/// the payment had succeeded already.
pub async fn mark_succeeded(
    conn: &mut PgConnection,
    id: Uuid,
    charge_id: &str,
    card: Option<&Card>,
) -> sqlx::Result<Option<Payment>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE payments
         SET state = 'succeeded', charge_id = $2, failure_message = NULL, last_error = NULL,
             lease_token = NULL, lease_until = NULL, updated_at = now(),
             card_brand = COALESCE($3, card_brand), card_last4 = COALESCE($4, card_last4)
         WHERE id = $1 AND state NOT IN ('succeeded', 'refunded')
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(charge_id)
    .bind(card.map(|c| c.brand.as_str()))
    .bind(card.map(|c| c.last4.as_str()))
    .fetch_optional(conn)
    .await
}

/// Records that a succeeded payment was given back. `false` if it had not succeeded.
pub async fn mark_refunded(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<bool> {
    sqlx::query(
        "UPDATE payments SET state = 'refunded', updated_at = now()
         WHERE id = $1 AND state = 'succeeded'",
    )
    .bind(id)
    .changed_one(conn)
    .await
}

/// Pending attempts nobody holds that have waited at least `idle` since they last changed:
/// their answer was lost and no request came back for them. At most `limit`, oldest first.
pub async fn abandoned(
    conn: &mut PgConnection,
    idle: Duration,
    limit: i64,
) -> sqlx::Result<Vec<Payment>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments
         WHERE state = 'pending' AND COALESCE(lease_until <= now(), true)
           AND updated_at < now() - make_interval(secs => $1)
         ORDER BY updated_at LIMIT $2"
    )))
    .bind(idle.as_secs_f64())
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Takes a pending attempt nobody holds, for the background reconciler. `None` if someone
/// holds it by now or it has an outcome.
pub async fn take_if_free(
    conn: &mut PgConnection,
    id: Uuid,
    lease_token: Uuid,
    lease: Duration,
) -> sqlx::Result<Option<Payment>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE payments
         SET lease_token = $2, lease_until = now() + make_interval(secs => $3), updated_at = now()
         WHERE id = $1 AND state = 'pending' AND COALESCE(lease_until <= now(), true)
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(lease_token)
    .bind(lease.as_secs_f64())
    .fetch_optional(conn)
    .await
}

/// Records that the provider accepted pending attempt `attempt` without settling it yet.
pub async fn mark_processing(
    conn: &mut PgConnection,
    id: Uuid,
    attempt: i32,
    charge_id: &str,
) -> sqlx::Result<bool> {
    sqlx::query(
        "UPDATE payments
         SET state = 'processing', charge_id = $3, lease_token = NULL, lease_until = NULL,
             updated_at = now()
         WHERE id = $1 AND state = 'pending' AND attempt = $2",
    )
    .bind(id)
    .bind(attempt)
    .bind(charge_id)
    .changed_one(conn)
    .await
}

/// Records that the provider refused pending attempt `attempt` (`Declined` or `Failed`).
pub async fn mark_refused(
    conn: &mut PgConnection,
    id: Uuid,
    attempt: i32,
    state: PaymentState,
    message: &str,
) -> sqlx::Result<bool> {
    debug_assert!(state.is_refused());
    sqlx::query(
        "UPDATE payments
         SET state = $3, failure_message = $4, lease_token = NULL, lease_until = NULL,
             updated_at = now()
         WHERE id = $1 AND state = 'pending' AND attempt = $2",
    )
    .bind(id)
    .bind(attempt)
    .bind(state.as_str())
    .bind(message)
    .changed_one(conn)
    .await
}

/// Records that a processing charge failed after all: the payment is declined.
pub async fn fail_processing(
    conn: &mut PgConnection,
    id: Uuid,
    charge_id: &str,
    message: &str,
) -> sqlx::Result<bool> {
    sqlx::query(
        "UPDATE payments
         SET state = 'declined', failure_message = $3, updated_at = now()
         WHERE id = $1 AND state = 'processing' AND charge_id = $2",
    )
    .bind(id)
    .bind(charge_id)
    .bind(message)
    .changed_one(conn)
    .await
}
