//! The `declines` table: declined attempts by buyer, for the card-testing limit.

use std::time::Duration;

use sqlx::PgConnection;
use uuid::Uuid;

/// Records one declined attempt by `user_id`.
pub async fn record(conn: &mut PgConnection, user_id: Uuid, order_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO declines (user_id, order_id) VALUES ($1, $2)")
        .bind(user_id)
        .bind(order_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// If `user_id` had at least `limit` declines within `window`: how many seconds until the
/// oldest of the last `limit` leaves the window (at least 1). `None` below the limit.
pub async fn blocked_for(
    conn: &mut PgConnection,
    user_id: Uuid,
    limit: i64,
    window: Duration,
) -> sqlx::Result<Option<u64>> {
    let wait: Option<f64> = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM (at + make_interval(secs => $3) - now()))::float8
         FROM declines
         WHERE user_id = $1 AND at > now() - make_interval(secs => $3)
         ORDER BY at DESC
         OFFSET $2 - 1 LIMIT 1",
    )
    .bind(user_id)
    .bind(limit)
    .bind(window.as_secs_f64())
    .fetch_optional(conn)
    .await?;
    Ok(wait.map(|seconds| seconds.ceil().max(1.0) as u64))
}

/// Forgets declines older than `window`. Returns how many went.
pub async fn prune(conn: &mut PgConnection, window: Duration) -> sqlx::Result<u64> {
    Ok(
        sqlx::query("DELETE FROM declines WHERE at < now() - make_interval(secs => $1)")
            .bind(window.as_secs_f64())
            .execute(conn)
            .await?
            .rows_affected(),
    )
}
