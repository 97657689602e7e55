//! Events with many seats: an organiser creates one (its seats in the same transaction) and
//! edits its text and start; everyone reads them through the cache.

use bytes::Bytes;
use ticketing_common::bus::outbox;
use ticketing_events::{Envelope, EventCreated, EventUpdated, seat_ids};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    app::Tickets,
    domain::{
        Ticket,
        event::{Event, EventText, FixedFields, NewEvent},
    },
    store::{events, tickets},
};

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("Event not found")]
    NotFound,
    #[error("Not the event's organiser")]
    NotOwner,
    #[error("Price, seats and seats per buyer are fixed when an event is created")]
    FixedChanged,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for EventError {
    fn from(error: sqlx::Error) -> Self {
        EventError::Unexpected(error.into())
    }
}

/// Creates an event and every one of its seats, and announces it in one message (every
/// service derives the seats' ids from it).
#[tracing::instrument(skip_all, fields(event_id = tracing::field::Empty, seats = new.seats))]
pub async fn create_event(app: &Tickets, owner: Uuid, new: NewEvent) -> anyhow::Result<Event> {
    let id = Uuid::now_v7();
    let ids = seat_ids(id, new.seats);
    let mut tx = app.pool.begin().await?;
    let event = events::insert(&mut tx, id, &new, owner).await?;
    tickets::insert_seats(&mut tx, id, &ids, &event.title, event.price, owner).await?;
    outbox::enqueue(&mut tx, &Envelope::new(EventCreated(event.details()))).await?;
    tx.commit().await?;
    tracing::Span::current().record("event_id", tracing::field::display(id));
    app.cache.event_changed(None).await;
    tracing::info!("event created");
    Ok(event)
}

/// Changes an event's title, venue, description and start: its organiser's. A body that
/// changes the price, the seats or the per-buyer limit is refused (they are fixed, so no
/// seat's price or existence changes under a buyer).
#[tracing::instrument(skip_all, fields(event_id = %id))]
pub async fn update_event(
    app: &Tickets,
    user: Uuid,
    id: Uuid,
    text: EventText,
    fixed: FixedFields,
) -> Result<Event, EventError> {
    let mut tx = app.pool.begin().await?;
    // Owner, price, seats and limit never change, so reading them first cannot race.
    match events::find(&mut tx, id).await? {
        None => return Err(EventError::NotFound),
        Some(event) if event.user_id != user => return Err(EventError::NotOwner),
        Some(event) if fixed.change(&event) => return Err(EventError::FixedChanged),
        Some(_) => {}
    }
    let event = events::update_text(&mut tx, id, user, &text)
        .await?
        .ok_or(EventError::NotFound)?;
    events::rename_seats(&mut tx, id, &event.title).await?;
    outbox::enqueue(&mut tx, &Envelope::new(EventUpdated(event.details()))).await?;
    tx.commit().await?;
    app.cache.event_changed(Some(id)).await;
    tracing::info!(version = event.version, "event updated");
    Ok(event)
}

/// One event's JSON; `None` if unknown.
pub async fn get_event_json(app: &Tickets, id: Uuid) -> anyhow::Result<Option<Bytes>> {
    let pool = app.pool.clone();
    app.cache
        .event(id, move || async move {
            let mut conn = pool.acquire().await?;
            let event = events::find(&mut conn, id).await?;
            Ok(event.map(|event| Bytes::from(serde_json::to_vec(&event).expect("serialises"))))
        })
        .await
}

/// One page of upcoming events, soonest first, as JSON.
pub async fn list_events_json(
    app: &Tickets,
    limit: i64,
    after: Option<Uuid>,
    q: Option<String>,
) -> anyhow::Result<Bytes> {
    let pool = app.pool.clone();
    let query = q.clone();
    let page = app
        .cache
        .events_page(limit, after, q.as_deref(), move || async move {
            let mut conn = pool.acquire().await?;
            let now = OffsetDateTime::now_utc();
            let events = events::upcoming(&mut conn, now, limit, after, query.as_deref()).await?;
            Ok(Some(Bytes::from(
                serde_json::to_vec(&events).expect("events serialise"),
            )))
        })
        .await?;
    Ok(page.unwrap_or_else(|| Bytes::from_static(b"[]")))
}

/// An organiser's events, newest first, older than `after` when given (read from PostgreSQL:
/// each reads only their own).
pub async fn list_owned_events(
    app: &Tickets,
    owner: Uuid,
    limit: i64,
    after: Option<Uuid>,
) -> anyhow::Result<Vec<Event>> {
    let mut conn = app.pool.acquire().await?;
    Ok(events::owned(&mut conn, owner, limit, after).await?)
}

/// An event's free seats in seat order; `None` if there is no such event.
pub async fn free_seats(
    app: &Tickets,
    event_id: Uuid,
    limit: i64,
) -> anyhow::Result<Option<Vec<Ticket>>> {
    let mut conn = app.pool.acquire().await?;
    if events::find(&mut conn, event_id).await?.is_none() {
        return Ok(None);
    }
    Ok(Some(tickets::free_seats(&mut conn, event_id, limit).await?))
}
