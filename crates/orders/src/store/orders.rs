//! The `orders` table. Every change is one conditional statement (the condition is the rule:
//! "only if still live", "only the owner's"), never a read followed by a write; a caller that
//! wants to know why nothing changed reads afterwards.

use std::time::Duration;

use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::Order;

/// The partial unique index allowing one live or complete order per ticket. A unique
/// violation on it means "someone else holds this ticket".
pub const ONE_ACTIVE_PER_TICKET: &str = "orders_one_active_per_ticket";

/// An order joined with its ticket (and, for a seat, its event, whose current title it shows),
/// as `Order`'s `FromRow` reads it; `o` is the order row.
/// The price is the one the order was created at (the replica's for older orders).
const COLUMNS: &str = "o.id, o.user_id, o.status, o.expires_at, o.version, o.ticket_id,
    COALESCE(e.title, t.title) AS title,
    COALESCE(o.price_cents, t.price_cents) AS price_cents, t.event_id, t.seat::text AS seat";

/// A statement's CTE that frees the seats held by the orders in the CTE `o` (which a
/// cancellation or refund just took out of the live and paid statuses). Orders of tickets
/// that are not seats have no row there.
const FREE_SEATS: &str = "freed AS (
             UPDATE seats SET order_id = NULL FROM o
             WHERE seats.ticket_id = o.ticket_id AND seats.order_id = o.id
         )";

/// The statuses that hold a ticket and may still be paid or expire.
const LIVE: &str = "('created', 'awaiting:payment')";

/// Inserts a `created` order for a ticket the replica knows, at the ticket's price and
/// version as the replica has them now, expiring `window` after the transaction's start
/// (the database's clock). `None` if the ticket is unknown or withdrawn. The ticket's row is
/// share-locked until the transaction ends, so a withdrawal applied at the same instant
/// either comes first (no order) or waits and then sees (and cancels) this one. Fails with a
/// unique violation on [`ONE_ACTIVE_PER_TICKET`] if another order holds the ticket; the
/// statement then waits for a concurrent holder's transaction to end before deciding.
pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    user_id: Uuid,
    ticket_id: Uuid,
    window: Duration,
) -> sqlx::Result<Option<Order>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH o AS (
             INSERT INTO orders (id, user_id, ticket_id, status, expires_at, price_cents,
                                 ticket_version)
             SELECT $1, $2, t.id, 'created', now() + make_interval(secs => $4), t.price_cents,
                    t.version
             FROM tickets t WHERE t.id = $3 AND NOT t.withdrawn
             FOR SHARE
             RETURNING *
         )
         SELECT {COLUMNS} FROM o JOIN tickets t ON t.id = o.ticket_id
         LEFT JOIN events e ON e.id = t.event_id"
    )))
    .bind(id)
    .bind(user_id)
    .bind(ticket_id)
    .bind(window.as_secs_f64())
    .fetch_optional(conn)
    .await
}

/// Whether a live or complete order holds the ticket, as far as committed data shows. Only
/// ever used to refuse early; acceptance is decided by the unique index in [`insert`].
pub async fn ticket_is_held(conn: &mut PgConnection, ticket_id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM orders
         WHERE ticket_id = $1 AND status IN ('created', 'awaiting:payment', 'complete'))",
    )
    .bind(ticket_id)
    .fetch_one(conn)
    .await
}

/// Takes a lock on one buyer until the transaction ends: a transaction-scoped advisory lock
/// in a key space of its own (the two-key form, class 1), keyed by the buyer id's hash.
/// Transactions placing orders for one buyer run one after another; a hash collision only
/// makes two buyers wait for each other.
pub async fn lock_buyer(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(1, hashtext($1::text))")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// How many unpaid orders a buyer holds.
pub async fn count_live_for_user(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<i64> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM orders WHERE user_id = $1 AND status IN {LIVE}"
    )))
    .bind(user_id)
    .fetch_one(conn)
    .await
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Order>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM orders o JOIN tickets t ON t.id = o.ticket_id
         LEFT JOIN events e ON e.id = t.event_id WHERE o.id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// A user's orders, newest first.
pub async fn list_for_user(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<Vec<Order>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM orders o JOIN tickets t ON t.id = o.ticket_id
         LEFT JOIN events e ON e.id = t.event_id
         WHERE o.user_id = $1
         ORDER BY o.id DESC"
    )))
    .bind(user_id)
    .fetch_all(conn)
    .await
}

/// Cancels an order that is still live (and belongs to `owner`, when given), bumping its
/// version. `None` if it is unknown, someone else's, or no longer live.
pub async fn cancel_if_live(
    conn: &mut PgConnection,
    id: Uuid,
    owner: Option<Uuid>,
) -> sqlx::Result<Option<Order>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH o AS (
             UPDATE orders SET status = 'cancelled', version = version + 1
             WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2) AND status IN {LIVE}
             RETURNING *
         ), {FREE_SEATS}
         SELECT {COLUMNS} FROM o JOIN tickets t ON t.id = o.ticket_id
         LEFT JOIN events e ON e.id = t.event_id"
    )))
    .bind(id)
    .bind(owner)
    .fetch_optional(conn)
    .await
}

/// Cancels every order that holds a ticket (live, or paid), bumping their versions: the
/// ticket was withdrawn under them.
pub async fn cancel_holding(conn: &mut PgConnection, ticket_id: Uuid) -> sqlx::Result<Vec<Order>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH o AS (
             UPDATE orders SET status = 'cancelled', version = version + 1
             WHERE ticket_id = $1 AND status IN ('created', 'awaiting:payment', 'complete')
             RETURNING *
         ), {FREE_SEATS}
         SELECT {COLUMNS} FROM o JOIN tickets t ON t.id = o.ticket_id
         LEFT JOIN events e ON e.id = t.event_id"
    )))
    .bind(ticket_id)
    .fetch_all(conn)
    .await
}

/// Marks a live order paid, bumping its version. `None` if it is unknown or no longer live.
pub async fn complete_if_live(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Order>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH o AS (
             UPDATE orders SET status = 'complete', version = version + 1
             WHERE id = $1 AND status IN {LIVE}
             RETURNING *
         )
         SELECT {COLUMNS} FROM o JOIN tickets t ON t.id = o.ticket_id
         LEFT JOIN events e ON e.id = t.event_id"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Marks a complete order refunded, bumping its version. `None` if it is unknown or not
/// complete.
pub async fn refund_if_complete(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Order>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH o AS (
             UPDATE orders SET status = 'refunded', version = version + 1
             WHERE id = $1 AND status = 'complete'
             RETURNING *
         ), {FREE_SEATS}
         SELECT {COLUMNS} FROM o JOIN tickets t ON t.id = o.ticket_id
         LEFT JOIN events e ON e.id = t.event_id"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Cancels up to `limit` live orders whose expiry passed more than `grace` ago, oldest
/// expiry first, bumping their versions. Rows another transaction holds are skipped (`SKIP
/// LOCKED`): a concurrent sweep in another replica takes them, and an order being paid or
/// cancelled right now is looked at again next time.
pub async fn cancel_overdue(
    conn: &mut PgConnection,
    grace: Duration,
    limit: i64,
) -> sqlx::Result<Vec<Order>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH due AS (
             SELECT id FROM orders
             WHERE status IN {LIVE} AND expires_at < now() - make_interval(secs => $1)
             ORDER BY expires_at
             LIMIT $2
             FOR UPDATE SKIP LOCKED
         ), o AS (
             UPDATE orders SET status = 'cancelled', version = orders.version + 1
             FROM due WHERE orders.id = due.id
             RETURNING orders.*
         ), {FREE_SEATS}
         SELECT {COLUMNS} FROM o JOIN tickets t ON t.id = o.ticket_id
         LEFT JOIN events e ON e.id = t.event_id
         ORDER BY o.expires_at"
    )))
    .bind(grace.as_secs_f64())
    .bind(limit)
    .fetch_all(conn)
    .await
}
