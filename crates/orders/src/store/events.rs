//! The event replica and its seats. An event arrives as one message; its seats are derived
//! here (`seat_ids`) and written in one statement each for the replica tickets and the seat
//! holds.

use sqlx::PgConnection;
use ticketing_common::db::ChangesOne;
use ticketing_events::{EventDetails, seat_ids};
use time::OffsetDateTime;
use uuid::Uuid;

/// What an order needs to know about an event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReplicaEvent {
    pub id: Uuid,
    pub starts_at: OffsetDateTime,
    pub max_per_buyer: i32,
}

/// Learns an event and creates its seats. `false` if the event was already known (a
/// redelivery): nothing changes then.
pub async fn insert(conn: &mut PgConnection, event: &EventDetails) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO events (id, title, price_cents, seats, max_per_buyer, starts_at, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
    )
    .bind(event.id)
    .bind(&event.title)
    .bind(event.price.0)
    .bind(event.seats)
    .bind(event.max_per_buyer)
    .bind(event.starts_at)
    .bind(event.version)
    .changed_one(&mut *conn)
    .await?;
    if !inserted {
        return Ok(false);
    }
    let ids = seat_ids(event.id, event.seats);
    sqlx::query(
        "INSERT INTO tickets (id, title, price_cents, version, event_id, seat)
         SELECT seat.id, $2, $3, 0, $4, seat.n
         FROM unnest($1::uuid[]) WITH ORDINALITY AS seat (id, n)",
    )
    .bind(&ids)
    .bind(&event.title)
    .bind(event.price.0)
    .bind(event.id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO seats (ticket_id, event_id, seat)
         SELECT seat.id, $2, seat.n FROM unnest($1::uuid[]) WITH ORDINALITY AS seat (id, n)",
    )
    .bind(&ids)
    .bind(event.id)
    .execute(conn)
    .await?;
    Ok(true)
}

/// Applies an event's next version (title and start), only over `version - 1`.
pub async fn apply_version(conn: &mut PgConnection, event: &EventDetails) -> sqlx::Result<bool> {
    sqlx::query(
        "UPDATE events SET title = $2, starts_at = $3, version = $4
         WHERE id = $1 AND version = $4 - 1",
    )
    .bind(event.id)
    .bind(&event.title)
    .bind(event.starts_at)
    .bind(event.version)
    .changed_one(conn)
    .await
}

pub async fn version(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("SELECT version FROM events WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<ReplicaEvent>> {
    sqlx::query_as("SELECT id, starts_at, max_per_buyer FROM events WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The event a ticket is a seat of; `None` for a ticket of its own (or an unknown one).
pub async fn of_ticket(
    conn: &mut PgConnection,
    ticket_id: Uuid,
) -> sqlx::Result<Option<ReplicaEvent>> {
    sqlx::query_as(
        "SELECT e.id, e.starts_at, e.max_per_buyer
         FROM tickets t JOIN events e ON e.id = t.event_id WHERE t.id = $1",
    )
    .bind(ticket_id)
    .fetch_optional(conn)
    .await
}

/// Takes the lowest free seat of an event for `order_id`, skipping seats other transactions
/// are taking right now. `None` when no seat is free (or every free one is being taken).
pub async fn take_best_seat(
    conn: &mut PgConnection,
    event_id: Uuid,
    order_id: Uuid,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "UPDATE seats SET order_id = $2
         WHERE ticket_id = (
             SELECT ticket_id FROM seats
             WHERE event_id = $1 AND order_id IS NULL
             ORDER BY seat LIMIT 1
             FOR UPDATE SKIP LOCKED
         )
         RETURNING ticket_id",
    )
    .bind(event_id)
    .bind(order_id)
    .fetch_optional(conn)
    .await
}

/// Locks one seat and takes it for `order_id` if it is free. `Some(false)` if another order
/// holds it, `None` if the ticket is not a seat.
pub async fn take_seat(
    conn: &mut PgConnection,
    ticket_id: Uuid,
    order_id: Uuid,
) -> sqlx::Result<Option<bool>> {
    let holder: Option<Option<Uuid>> =
        sqlx::query_scalar("SELECT order_id FROM seats WHERE ticket_id = $1 FOR UPDATE")
            .bind(ticket_id)
            .fetch_optional(&mut *conn)
            .await?;
    match holder {
        None => Ok(None),
        Some(Some(_)) => Ok(Some(false)),
        Some(None) => {
            sqlx::query("UPDATE seats SET order_id = $2 WHERE ticket_id = $1")
                .bind(ticket_id)
                .bind(order_id)
                .execute(conn)
                .await?;
            Ok(Some(true))
        }
    }
}

/// How many live or paid orders a buyer holds for an event's seats.
pub async fn held_by_buyer(
    conn: &mut PgConnection,
    event_id: Uuid,
    user_id: Uuid,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM orders o JOIN tickets t ON t.id = o.ticket_id
         WHERE o.user_id = $1 AND t.event_id = $2
           AND o.status IN ('created', 'awaiting:payment', 'complete')",
    )
    .bind(user_id)
    .bind(event_id)
    .fetch_one(conn)
    .await
}
