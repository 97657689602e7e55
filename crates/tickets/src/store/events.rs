//! The `events` table. Edits are conditional updates that bump the version by one; sales
//! move only `held` (in the seat's own statement, see `tickets`).

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::event::{Event, EventText, NewEvent};

const COLUMNS: &str = "id, title, description, venue, starts_at, price_cents, seats,
    seats - held AS available, max_per_buyer, user_id, version";

pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    event: &NewEvent,
    user_id: Uuid,
) -> sqlx::Result<Event> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO events (id, title, venue, description, starts_at, price_cents, seats,
                             max_per_buyer, user_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(event.text.title.as_str())
    .bind(event.text.venue.as_str())
    .bind(&event.text.description)
    .bind(event.text.starts_at)
    .bind(event.price.0)
    .bind(event.seats)
    .bind(event.max_per_buyer)
    .bind(user_id)
    .fetch_one(conn)
    .await
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Event>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM events WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Changes an event's text and start, if `owner` owns it. `None` otherwise.
pub async fn update_text(
    conn: &mut PgConnection,
    id: Uuid,
    owner: Uuid,
    text: &EventText,
) -> sqlx::Result<Option<Event>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE events SET title = $3, venue = $4, description = $5, starts_at = $6,
                           version = version + 1
         WHERE id = $1 AND user_id = $2
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(owner)
    .bind(text.title.as_str())
    .bind(text.venue.as_str())
    .bind(&text.description)
    .bind(text.starts_at)
    .fetch_optional(conn)
    .await
}

/// Events starting after `now`, soonest first, after the event `after` in that order when
/// given, matching the words of `q` when given.
pub async fn upcoming(
    conn: &mut PgConnection,
    now: OffsetDateTime,
    limit: i64,
    after: Option<Uuid>,
    q: Option<&str>,
) -> sqlx::Result<Vec<Event>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM events
         WHERE starts_at > $1
           AND ($3::uuid IS NULL
                OR (starts_at, id) > (SELECT starts_at, id FROM events WHERE id = $3))
           AND ($4::text IS NULL
                OR to_tsvector('simple', title || ' ' || venue || ' ' || description)
                   @@ plainto_tsquery('simple', $4))
         ORDER BY starts_at, id LIMIT $2"
    )))
    .bind(now)
    .bind(limit)
    .bind(after)
    .bind(q)
    .fetch_all(conn)
    .await
}

/// An organiser's events, newest first, older than `after` when given.
pub async fn owned(
    conn: &mut PgConnection,
    owner: Uuid,
    limit: i64,
    after: Option<Uuid>,
) -> sqlx::Result<Vec<Event>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM events WHERE user_id = $1 AND ($3::uuid IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $2"
    )))
    .bind(owner)
    .bind(limit)
    .bind(after)
    .fetch_all(conn)
    .await
}

/// Gives an event's seats its new title (their versions do not move: a seat's version moves
/// only with its own reservations).
pub async fn rename_seats(conn: &mut PgConnection, id: Uuid, title: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE tickets SET title = $2 WHERE event_id = $1 AND title <> $2")
        .bind(id)
        .bind(title)
        .execute(conn)
        .await
        .map(drop)
}
