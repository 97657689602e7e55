//! `/events/{id}`: one event, and `/events/{id}/buy`, ordering its best available seat.
//!
//! Buying is a form post that ends in a `303`: to the new order's page ("Your seat is
//! held…"), or back to the event's page with the API's reason on top (sold out, the
//! per-buyer limit, the event has started), so it needs no script and leaves no address
//! to reopen.

use std::time::Duration;

use askama::Template;
use axum::{extract::State as Extract, http::StatusCode, response::Response};
use time::OffsetDateTime;
use uuid::Uuid;

use super::EventView;
use crate::{
    api::{Api, ApiFailure, Order, Visitor},
    pages::{
        MaybeSignedIn, Nav, PageId, SignedIn, State, failure_page,
        flash::{self, Done, Flash},
        layout::back_to,
        orders::OrderView,
        render, signin_redirect,
    },
};

/// One of the viewer's own seats of the event: held by a live order or paid for.
pub struct MySeat {
    pub order_id: Uuid,
    pub seat: String,
    pub status_label: &'static str,
}

#[derive(Template)]
#[template(path = "event.html")]
struct EventPage {
    nav: Nav,
    event: EventView,
    signed_in: bool,
    /// The viewer organises this event.
    organiser: bool,
    my_seats: Vec<MySeat>,
}

impl EventPage {
    /// The viewer holds as many seats as one buyer may: no Buy button, a sentence instead.
    fn at_limit(&self) -> bool {
        self.my_seats.len() as i64 >= self.event.max_per_buyer
    }

    /// `1 seat`, `2 seats`: how many the viewer holds.
    fn held(&self) -> String {
        match self.my_seats.len() {
            1 => "1 seat".to_owned(),
            n => format!("{n} seats"),
        }
    }
}

/// The viewer's live and paid seats of `event`, from their orders; none if the orders cannot
/// be read (the page still shows the event, and the API still counts the limit).
async fn my_seats(api: &Api, visitor: &Visitor, event: Uuid) -> Vec<MySeat> {
    let orders = match api.orders(visitor).await {
        Ok(orders) => orders,
        Err(failure) => {
            tracing::warn!(error = %failure.sentence(), "the viewer's orders could not be read");
            return Vec::new();
        }
    };
    let now = OffsetDateTime::now_utc();
    let mut seats: Vec<MySeat> = orders
        .into_iter()
        .filter(|o: &Order| o.ticket.event_id == Some(event))
        .map(|o| OrderView::of(o, now))
        .filter(|o| o.live || o.complete)
        .filter_map(|o| {
            Some(MySeat {
                order_id: o.id,
                seat: o.seat?,
                status_label: o.status_label,
            })
        })
        .collect();
    // Seat order reads best: "Seat 3, Seat 4".
    seats.sort_by_key(|s| (s.seat.len(), s.seat.clone()));
    seats
}

pub(super) async fn show(
    Extract(api): Extract<State>,
    MaybeSignedIn { user, nav }: MaybeSignedIn,
    visitor: Visitor,
    PageId(id): PageId,
) -> Response {
    let here = format!("/events/{id}");
    let event = match api.event(&visitor, id).await {
        Ok(event) => EventView::of(event, OffsetDateTime::now_utc()),
        Err(failure) => return failure_page(&failure, &here, user.0.is_some()),
    };
    let me = user.0.as_ref().map(|u| u.id);
    let my_seats = match me {
        Some(_) => my_seats(&api, &visitor, id).await,
        None => Vec::new(),
    };
    let page = EventPage {
        nav,
        signed_in: me.is_some(),
        organiser: me == Some(event.organiser),
        event,
        my_seats,
    };
    render(StatusCode::OK, &page)
}

/// A reopened `/buy` address: the event's page.
pub(super) async fn back_to_event(PageId(id): PageId) -> Response {
    back_to(&format!("/events/{id}"))
}

/// How long buying waits for the orders service to learn of a brand-new event.
const NEW_EVENT_GRACE: Duration = Duration::from_secs(5);

#[tracing::instrument(skip_all, fields(event_id = %id))]
pub(super) async fn buy(
    Extract(api): Extract<State>,
    SignedIn { visitor, .. }: SignedIn,
    PageId(id): PageId,
) -> Response {
    let here = format!("/events/{id}");
    let deadline = tokio::time::Instant::now() + NEW_EVENT_GRACE;
    let outcome = loop {
        match api.order_seat(&visitor, id).await {
            // Orders learns events from events: an event created a moment ago may be unknown
            // to it yet, while tickets itself knows it.
            Err(failure)
                if failure.is(StatusCode::NOT_FOUND)
                    && tokio::time::Instant::now() < deadline
                    && api.event(&visitor, id).await.is_ok() =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => break other,
        }
    };
    match outcome {
        Ok(order) => flash::redirect(
            &format!("/orders/{}", order.id),
            Flash::Done(Done::SeatHeld),
        ),
        Err(failure) if failure.is(StatusCode::UNAUTHORIZED) => signin_redirect(&here),
        Err(failure) if failure.is(StatusCode::NOT_FOUND) => match api.event(&visitor, id).await {
            // Still unknown to orders after the grace: said on the event's page.
            Ok(_) => flash::redirect(
                &here,
                Flash::Refused(
                    "This event is not open for orders yet. Try again in a moment.".into(),
                ),
            ),
            Err(other) => failure_page(&other, &here, true),
        },
        // Sold out, the per-buyer limit, started, too many unpaid orders, or the API not
        // answering: back to the event, which shows where things stand, with the reason.
        Err(failure) => flash::redirect(&here, Flash::Refused(said(&failure))),
    }
}

/// The API's reason as a sentence (its messages end without a full stop).
fn said(failure: &ApiFailure) -> String {
    let sentence = failure.sentence();
    if sentence.ends_with(['.', '!', '?']) {
        sentence
    } else {
        format!("{sentence}.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::FieldError;

    #[test]
    fn a_refusal_reads_as_a_sentence() {
        let failure = |message: &str| ApiFailure {
            status: Some(StatusCode::CONFLICT),
            errors: vec![FieldError {
                message: message.into(),
                field: None,
            }],
        };
        assert_eq!(
            said(&failure("Sold out: every seat of this event is taken")),
            "Sold out: every seat of this event is taken."
        );
        assert_eq!(said(&failure("Try again.")), "Try again.");
    }
}
