//! Events with many seats: `/events` (upcoming, with search), `/events/{id}` (and buying
//! the best available seat), `/events/new` and `/events/{id}/edit` (the organiser's forms),
//! `/events/mine` (the organiser's events with their seats sold).
//!
//! What they share lives here: an event as the pages show it ([`EventView`]).

mod form;
mod list;
mod mine;
mod show;

use axum::{Router, routing::get};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use uuid::Uuid;

use super::{
    State, money,
    time::{Moment, Precision},
};
use crate::api::events::Event;

pub fn router() -> Router<State> {
    Router::new()
        .route("/events", get(list::list))
        .route("/events/new", get(form::new_form).post(form::create))
        .route("/events/mine", get(mine::list))
        .route("/events/{id}", get(show::show))
        .route("/events/{id}/edit", get(form::edit_form).post(form::update))
        .route("/events/{id}/buy", get(show::back_to_event).post(show::buy))
}

/// An event as the pages show it, its state computed from the server's clock.
pub struct EventView {
    pub id: Uuid,
    pub title: String,
    pub venue: String,
    /// Line breaks kept (the page shows them as such, escaped like every value).
    pub description: String,
    pub price: String,
    pub seats: i64,
    pub available: i64,
    pub max_per_buyer: i64,
    /// When it starts (`None` if the API's time could not be read).
    pub starts: Option<Moment>,
    /// It has started: its seats are no longer sold.
    pub started: bool,
    pub organiser: Uuid,
}

impl EventView {
    pub fn of(event: Event, now: OffsetDateTime) -> EventView {
        let starts_at = OffsetDateTime::parse(&event.starts_at, &Rfc3339).ok();
        EventView {
            id: event.id,
            title: event.title,
            venue: event.venue,
            description: event.description,
            price: money(event.price),
            seats: event.seats,
            available: event.available.clamp(0, event.seats.max(0)),
            max_per_buyer: event.max_per_buyer,
            starts: starts_at.map(|at| Moment::of(at, Precision::Day)),
            started: starts_at.is_some_and(|at| at <= now),
            organiser: event.user_id,
        }
    }

    pub fn sold_out(&self) -> bool {
        self.available == 0
    }

    /// Seats held by a live or paid order.
    pub fn sold(&self) -> i64 {
        self.seats - self.available
    }

    /// `37 of 100 left`, `1 of 100 left`, `Sold out`.
    pub fn seats_left(&self) -> String {
        if self.sold_out() {
            "Sold out".to_owned()
        } else {
            format!("{} of {} left", self.available, self.seats)
        }
    }

    /// `37 seats left`, `1 seat left`, `Sold out`: a row of a list.
    pub fn left(&self) -> String {
        match self.available {
            0 => "Sold out".to_owned(),
            1 => "1 seat left".to_owned(),
            n => format!("{n} seats left"),
        }
    }

    /// `started`, `sold-out` or `on-sale`, for the style; with its label.
    pub fn state(&self) -> (&'static str, &'static str) {
        if self.started {
            ("started", "Started")
        } else if self.sold_out() {
            ("sold-out", "Sold out")
        } else {
            ("on-sale", "On sale")
        }
    }

    pub fn state_class(&self) -> &'static str {
        self.state().0
    }

    pub fn state_label(&self) -> &'static str {
        self.state().1
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn event(seats: i64, available: i64, starts_at: &str) -> EventView {
        EventView::of(
            Event {
                id: Uuid::from_u128(1),
                title: "Jazz Night".into(),
                description: "Doors 19:00\nBar open".into(),
                venue: "Town Hall".into(),
                starts_at: starts_at.into(),
                price: 25.0,
                seats,
                available,
                max_per_buyer: 4,
                user_id: Uuid::from_u128(2),
                version: 0,
            },
            datetime!(2027-03-01 12:00 UTC),
        )
    }

    #[test]
    fn an_event_says_how_many_seats_are_left_and_sold() {
        let on_sale = event(100, 37, "2027-03-10T20:00:00Z");
        assert_eq!(on_sale.seats_left(), "37 of 100 left");
        assert_eq!(on_sale.left(), "37 seats left");
        assert_eq!(event(100, 1, "2027-03-10T20:00:00Z").left(), "1 seat left");
        assert_eq!(on_sale.sold(), 63);
        assert_eq!(on_sale.state(), ("on-sale", "On sale"));
        assert_eq!(on_sale.price, "$25.00");
        assert_eq!(
            on_sale.starts.as_ref().map(|m| m.utc.as_str()),
            Some("Wed 2027-03-10 20:00 UTC")
        );
        let sold_out = event(100, 0, "2027-03-10T20:00:00Z");
        assert_eq!(sold_out.seats_left(), "Sold out");
        assert_eq!(sold_out.left(), "Sold out");
        assert_eq!(sold_out.state(), ("sold-out", "Sold out"));
        // A count the API should never give is kept within the seats.
        assert_eq!(
            event(3, -1, "2027-03-10T20:00:00Z").seats_left(),
            "Sold out"
        );
    }

    #[test]
    fn an_event_whose_start_has_passed_has_started() {
        let started = event(10, 4, "2027-03-01T11:59:59Z");
        assert!(started.started);
        assert_eq!(started.state(), ("started", "Started"));
        assert!(!event(10, 4, "2027-03-01T12:00:01Z").started);
        let unreadable = event(10, 4, "soon");
        assert!(!unreadable.started && unreadable.starts.is_none());
    }
}
