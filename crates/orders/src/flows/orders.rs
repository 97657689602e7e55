//! Ordering, listing, showing and cancelling, on behalf of a signed-in buyer.

use anyhow::Context;
use ticketing_common::{bus::outbox, error::is_unique_violation};
use ticketing_events::{Envelope, OrderStatus};
use uuid::Uuid;

use crate::{
    app::Orders,
    domain::Order,
    store::{
        events::{self, ReplicaEvent},
        orders::{self, ONE_ACTIVE_PER_TICKET},
    },
};

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("Ticket not found")]
    TicketNotFound,
    #[error("The ticket is already reserved")]
    TicketHeld,
    /// The buyer already holds the most unpaid orders allowed.
    #[error("You already hold {cap} unpaid orders: pay for or cancel one before ordering another")]
    TooManyLive { cap: u32 },
    #[error("Event not found")]
    EventNotFound,
    #[error("Sold out: every seat of this event is taken")]
    SoldOut,
    #[error("The event has started: its seats are no longer sold")]
    EventStarted,
    /// The buyer already holds the event's `maxPerBuyer` live or paid orders.
    #[error("You already hold {max} seats of this event, the most one buyer may have")]
    TooManyForEvent { max: i32 },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum ShowError {
    #[error("Order not found")]
    NotFound,
    #[error("Not the order's owner")]
    NotOwner,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("Order not found")]
    NotFound,
    #[error("Not the order's owner")]
    NotOwner,
    #[error("The order is paid and cannot be cancelled")]
    Complete,
    #[error("The order was refunded and cannot be cancelled")]
    Refunded,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

macro_rules! from_sqlx {
    ($($error:ident),*) => {$(
        impl From<sqlx::Error> for $error {
            fn from(error: sqlx::Error) -> Self {
                $error::Unexpected(anyhow::Error::new(error).context("database query failed"))
            }
        }
    )*};
}
from_sqlx!(CreateError, ShowError, CancelError);

/// Orders a ticket for a buyer and announces it. The insert itself decides a race for the
/// ticket: the partial unique index lets exactly one live order per ticket exist, and the
/// losers' transactions roll back with nothing written. The buyer's cap on unpaid orders (and,
/// for a seat of an event, the event's per-buyer limit) is decided in the same transaction,
/// under a lock on the buyer, so parallel requests from one buyer are counted one after
/// another and cannot overshoot it.
#[tracing::instrument(skip_all, fields(ticket_id = %ticket_id, order_id = tracing::field::Empty))]
pub async fn create_order(
    app: &Orders,
    buyer: Uuid,
    ticket_id: Uuid,
) -> Result<Order, CreateError> {
    let mut conn = app.pool.acquire().await?;
    // In a rush most requests are for a ticket that is already taken: refuse those with one
    // read instead of a transaction that fails. This read never accepts anything; the unique
    // index below decides every race.
    if orders::ticket_is_held(&mut conn, ticket_id).await? {
        return Err(CreateError::TicketHeld);
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    // A ticket's event never changes, so this read cannot race.
    let event = events::of_ticket(&mut tx, ticket_id).await?;
    if app.max_live_per_buyer.is_some() || event.is_some() {
        orders::lock_buyer(&mut tx, buyer).await?;
    }
    let order_id = Uuid::now_v7();
    // A seat is taken in the seat table first (as the best-seat allocation does), so the
    // two ways of ordering a seat lock in the same order.
    if event.is_some() && events::take_seat(&mut tx, ticket_id, order_id).await? == Some(false) {
        return Err(CreateError::TicketHeld);
    }
    let order = insert(&mut tx, app, order_id, buyer, ticket_id).await?;
    if let Some(event) = &event {
        // After the insert, so an unknown or held seat still answers 404 / 409 first; the new
        // order is one of the buyer's.
        check_event_rules(&mut tx, event, buyer, 1).await?;
    }
    finish(tx, app, buyer, order).await
}

/// Orders the best available seat of an event (the lowest free seat number) for a buyer.
/// Buyers racing for one event each take a different free seat (`FOR UPDATE SKIP LOCKED`
/// on the seat table), so nobody queues behind the event's row; the unique index on orders
/// stays the final word. The per-buyer limit is counted under the buyer's lock, in the same
/// transaction.
#[tracing::instrument(skip_all, fields(event_id = %event_id, order_id = tracing::field::Empty))]
pub async fn create_order_for_event(
    app: &Orders,
    buyer: Uuid,
    event_id: Uuid,
) -> Result<Order, CreateError> {
    let mut tx = app.pool.begin().await?;
    orders::lock_buyer(&mut tx, buyer).await?;
    let event = events::find(&mut tx, event_id)
        .await?
        .ok_or(CreateError::EventNotFound)?;
    check_event_rules(&mut tx, &event, buyer, 0).await?;
    let order_id = Uuid::now_v7();
    let seat = events::take_best_seat(&mut tx, event_id, order_id)
        .await?
        .ok_or(CreateError::SoldOut)?;
    let order = insert(&mut tx, app, order_id, buyer, seat).await?;
    finish(tx, app, buyer, order).await
}

/// Inserts the order; an unknown or withdrawn ticket is 404, a held one 409.
async fn insert(
    tx: &mut sqlx::PgConnection,
    app: &Orders,
    order_id: Uuid,
    buyer: Uuid,
    ticket_id: Uuid,
) -> Result<Order, CreateError> {
    match orders::insert(tx, order_id, buyer, ticket_id, app.window).await {
        Ok(Some(order)) => Ok(order),
        Ok(None) => Err(CreateError::TicketNotFound),
        Err(error) if is_unique_violation(&error, Some(ONE_ACTIVE_PER_TICKET)) => {
            tracing::info!("ticket already held; order refused");
            Err(CreateError::TicketHeld)
        }
        Err(error) => Err(error.into()),
    }
}

/// An event's rules for a buyer: selling stops when it starts, and nobody holds more than
/// `maxPerBuyer` of its seats (`placed`: orders of this request already counted).
async fn check_event_rules(
    tx: &mut sqlx::PgConnection,
    event: &ReplicaEvent,
    buyer: Uuid,
    placed: i64,
) -> Result<(), CreateError> {
    if event.starts_at <= time::OffsetDateTime::now_utc() {
        return Err(CreateError::EventStarted);
    }
    let held = events::held_by_buyer(tx, event.id, buyer).await?;
    if held - placed >= i64::from(event.max_per_buyer) {
        tracing::info!(
            held,
            max = event.max_per_buyer,
            "buyer at the event's limit; order refused"
        );
        return Err(CreateError::TooManyForEvent {
            max: event.max_per_buyer,
        });
    }
    Ok(())
}

/// The buyer's cap on unpaid orders, then the announcement and the commit.
async fn finish(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    app: &Orders,
    buyer: Uuid,
    order: Order,
) -> Result<Order, CreateError> {
    if let Some(cap) = app.max_live_per_buyer {
        // Counted after the insert, so an unknown or held ticket still answers 404 / 409
        // first, in the contract's order of checks; the new order is one of them.
        let live = orders::count_live_for_user(&mut tx, buyer).await?;
        if live > i64::from(cap) {
            tracing::info!(
                live,
                cap,
                "buyer holds too many unpaid orders; order refused"
            );
            return Err(CreateError::TooManyLive { cap });
        }
    }
    outbox::enqueue(&mut tx, &Envelope::new(order.created_event())).await?;
    tx.commit().await.context("cannot commit the new order")?;
    tracing::Span::current().record("order_id", tracing::field::display(order.id));
    tracing::info!(expires_at = %order.expires_at, "order created");
    Ok(order)
}

/// A buyer's orders, newest first.
#[tracing::instrument(skip_all)]
pub async fn list_orders(app: &Orders, buyer: Uuid) -> anyhow::Result<Vec<Order>> {
    let mut conn = app.pool.acquire().await?;
    Ok(orders::list_for_user(&mut conn, buyer).await?)
}

/// One order, for its owner (or an operator).
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn show_order(
    app: &Orders,
    user: Uuid,
    operator: bool,
    id: Uuid,
) -> Result<Order, ShowError> {
    let mut conn = app.pool.acquire().await?;
    match orders::find(&mut conn, id).await? {
        None => Err(ShowError::NotFound),
        Some(order) if order.user_id != user && !operator => Err(ShowError::NotOwner),
        Some(order) => Ok(order),
    }
}

/// Cancels a buyer's own live order and announces it; the ticket is free for a new order as
/// soon as this commits. Cancelling an order that is already cancelled succeeds and announces
/// nothing; a paid order cannot be cancelled.
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn cancel_order(app: &Orders, user: Uuid, id: Uuid) -> Result<(), CancelError> {
    let mut tx = app.pool.begin().await?;
    if let Some(order) = orders::cancel_if_live(&mut tx, id, Some(user)).await? {
        outbox::enqueue(&mut tx, &Envelope::new(order.cancelled_event())).await?;
        tx.commit()
            .await
            .context("cannot commit the cancellation")?;
        tracing::info!(version = order.version, "order cancelled by its buyer");
        return Ok(());
    }
    // The conditional update refused; say why, in the contract's order of checks.
    match orders::find(&mut tx, id).await? {
        None => Err(CancelError::NotFound),
        Some(order) if order.user_id != user => Err(CancelError::NotOwner),
        Some(order) => match order.status {
            OrderStatus::Cancelled => Ok(()),
            OrderStatus::Complete => Err(CancelError::Complete),
            OrderStatus::Refunded => Err(CancelError::Refunded),
            // Unreachable: the update would have matched a live order of this owner, and no
            // order ever becomes live again.
            status @ (OrderStatus::Created | OrderStatus::AwaitingPayment) => {
                Err(CancelError::Unexpected(anyhow::anyhow!(
                    "order still {} after a refused cancellation",
                    status.as_str()
                )))
            }
        },
    }
}
