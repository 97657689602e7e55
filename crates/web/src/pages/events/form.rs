//! `/events/new` and `/events/{id}/edit`: the organiser's forms, one template.
//!
//! The start is an `<input type="datetime-local">`, a wall-clock time in the visitor's zone:
//! `/assets/event-form.js` sends that zone's offset from UTC at that moment alongside, and
//! [`from_local`] makes the UTC time the API takes of the two. Without script no offset
//! comes, the form says its time is UTC, and it is taken as such. The edit form writes the
//! event's start in UTC and marks it so (`data-utc`), for the script to show it in the
//! visitor's zone.
//!
//! The price is taken as people type it ([`price::normalise`]), the seats with thousands
//! separators ([`price::count`]); the description's line breaks are sent as the API counts
//! them (`\n`, where a browser posts `\r\n`). A refusal shows the form again with each
//! message under its field and everything typed kept.

use askama::Template;
use axum::{Form, extract::State as Extract, http::StatusCode, response::Response};
use serde::Deserialize;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use uuid::Uuid;

use crate::{
    api::{ApiFailure, events::EventFields},
    pages::{
        Nav, PageId, SignedIn, State, failure_page,
        flash::{self, Done, Flash},
        message_page, money,
        price::{self, NotAPrice},
        render, signin_redirect,
        time::{NotATime, from_local, offset_minutes, utc_input},
    },
};

/// The form as posted; every field a string, so any post can be shown again as typed.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EventForm {
    title: String,
    venue: String,
    description: String,
    starts_at: String,
    /// Minutes east of UTC of the visitor's zone at `starts_at`, from the form's script.
    utc_offset: String,
    price: String,
    seats: String,
    max_per_buyer: String,
}

impl EventForm {
    /// The start as the API takes it, or why it is not one.
    fn start(&self) -> Result<String, NotATime> {
        from_local(&self.starts_at, offset_minutes(&self.utc_offset))
    }

    /// The description with a browser's `\r\n` line breaks as `\n`.
    fn description(&self) -> String {
        self.description.replace("\r\n", "\n")
    }
}

/// A message under each field the API (or the form) refused.
#[derive(Debug, Default)]
struct Errors {
    title: Option<String>,
    venue: Option<String>,
    description: Option<String>,
    starts_at: Option<String>,
    price: Option<String>,
    seats: Option<String>,
    max_per_buyer: Option<String>,
}

const FIELDS: [&str; 7] = [
    "title",
    "venue",
    "description",
    "startsAt",
    "price",
    "seats",
    "maxPerBuyer",
];

/// What the edit form shows of the fields fixed at creation.
struct Fixed {
    price: String,
    seats: i64,
    max_per_buyer: i64,
}

#[derive(Template)]
#[template(path = "event_form.html")]
struct FormPage {
    nav: Nav,
    heading: &'static str,
    action: String,
    submit: &'static str,
    /// The page to go back to without saving.
    back: String,
    /// On the edit form: price, seats and the per-buyer limit, which cannot change.
    fixed: Option<Fixed>,
    form: EventForm,
    /// `form.starts_at` is in UTC (the edit form's value, or a post without the script's
    /// offset): the script shows it in the visitor's zone.
    starts_utc: bool,
    errors: Errors,
    general: Vec<String>,
}

impl FormPage {
    fn create(nav: Nav, form: EventForm) -> FormPage {
        FormPage {
            nav,
            heading: "Create an event",
            action: "/events/new".into(),
            submit: "Create event",
            back: "/events/mine".into(),
            fixed: None,
            starts_utc: offset_minutes(&form.utc_offset).is_none(),
            form,
            errors: Errors::default(),
            general: Vec::new(),
        }
    }

    fn edit(nav: Nav, id: Uuid, fixed: Fixed, form: EventForm) -> FormPage {
        FormPage {
            nav,
            heading: "Edit your event",
            action: format!("/events/{id}/edit"),
            submit: "Save changes",
            back: format!("/events/{id}"),
            fixed: Some(fixed),
            starts_utc: offset_minutes(&form.utc_offset).is_none(),
            form,
            errors: Errors::default(),
            general: Vec::new(),
        }
    }

    /// The seats per buyer to choose from, and whether each is chosen (4 when none is).
    fn per_buyer(&self) -> Vec<(u8, bool)> {
        let chosen = self.form.max_per_buyer.trim();
        let chosen = if chosen.is_empty() { "4" } else { chosen };
        (1..=10).map(|n| (n, n.to_string() == chosen)).collect()
    }

    /// The form again with the API's refusal under each field; `start` and `price` say
    /// whether the form could read them at all (if not, the API was sent none, and the
    /// message under the field is ours).
    fn refused(
        mut self,
        failure: &ApiFailure,
        start: &Result<String, NotATime>,
        price: Option<&Result<String, NotAPrice>>,
    ) -> Response {
        self.errors = Errors {
            title: failure.for_field("title"),
            venue: failure.for_field("venue"),
            description: failure.for_field("description"),
            starts_at: match start {
                Ok(_) => failure.for_field("startsAt"),
                Err(_) => Some(NotATime::MESSAGE.to_owned()),
            },
            price: match price {
                Some(Err(_)) => Some(NotAPrice::MESSAGE.to_owned()),
                _ => failure.for_field("price"),
            },
            seats: failure.for_field("seats"),
            max_per_buyer: failure.for_field("maxPerBuyer"),
        };
        self.general = failure.general(&FIELDS);
        let status = failure
            .status
            .filter(|s| s.is_client_error())
            .unwrap_or(StatusCode::BAD_GATEWAY);
        render(status, &self)
    }
}

pub(super) async fn new_form(SignedIn { nav, .. }: SignedIn) -> Response {
    let form = EventForm {
        max_per_buyer: "4".into(),
        ..EventForm::default()
    };
    render(StatusCode::OK, &FormPage::create(nav, form))
}

#[tracing::instrument(skip_all)]
pub(super) async fn create(
    Extract(api): Extract<State>,
    SignedIn { nav, visitor, .. }: SignedIn,
    Form(form): Form<EventForm>,
) -> Response {
    let start = form.start();
    let price = price::normalise(&form.price);
    let description = form.description();
    let seats = price::count(&form.seats);
    let max_per_buyer = form.max_per_buyer.trim();
    let fields = EventFields {
        title: &form.title,
        venue: &form.venue,
        description: &description,
        starts_at: start.as_deref().ok(),
        price: price.as_deref().ok(),
        seats: seats.as_deref(),
        max_per_buyer: (!max_per_buyer.is_empty()).then_some(max_per_buyer),
    };
    match api.create_event(&visitor, &fields).await {
        Ok(event) => flash::redirect(
            &format!("/events/{}", event.id),
            Flash::Done(Done::EventCreated),
        ),
        Err(failure) if failure.is(StatusCode::UNAUTHORIZED) => signin_redirect("/events/new"),
        Err(failure) => FormPage::create(nav, form).refused(&failure, &start, Some(&price)),
    }
}

pub(super) async fn edit_form(
    Extract(api): Extract<State>,
    SignedIn {
        me, nav, visitor, ..
    }: SignedIn,
    PageId(id): PageId,
) -> Response {
    let event = match api.event(&visitor, id).await {
        Ok(event) => event,
        Err(failure) => return failure_page(&failure, &format!("/events/{id}/edit"), true),
    };
    if event.user_id != me.id {
        return message_page(
            StatusCode::FORBIDDEN,
            "Not your event",
            "Only the organiser can edit this event.",
        );
    }
    let fixed = Fixed {
        price: money(event.price),
        seats: event.seats,
        max_per_buyer: event.max_per_buyer,
    };
    let form = EventForm {
        starts_at: OffsetDateTime::parse(&event.starts_at, &Rfc3339)
            .map(utc_input)
            .unwrap_or_default(),
        title: event.title,
        venue: event.venue,
        description: event.description,
        ..EventForm::default()
    };
    render(StatusCode::OK, &FormPage::edit(nav, id, fixed, form))
}

#[tracing::instrument(skip_all, fields(event_id = %id))]
pub(super) async fn update(
    Extract(api): Extract<State>,
    SignedIn { nav, visitor, .. }: SignedIn,
    PageId(id): PageId,
    Form(form): Form<EventForm>,
) -> Response {
    let here = format!("/events/{id}/edit");
    let start = form.start();
    let description = form.description();
    let fields = EventFields {
        title: &form.title,
        venue: &form.venue,
        description: &description,
        starts_at: start.as_deref().ok(),
        ..EventFields::default()
    };
    match api.update_event(&visitor, id, &fields).await {
        Ok(_) => flash::redirect(&format!("/events/{id}"), Flash::Done(Done::Saved)),
        Err(failure)
            if failure.is(StatusCode::UNAUTHORIZED) || failure.is(StatusCode::NOT_FOUND) =>
        {
            failure_page(&failure, &here, true)
        }
        Err(failure) => {
            // The fixed fields, for the page: read again, since the form does not post them.
            let fixed = match api.event(&visitor, id).await {
                Ok(event) => Fixed {
                    price: money(event.price),
                    seats: event.seats,
                    max_per_buyer: event.max_per_buyer,
                },
                Err(other) => return failure_page(&other, &here, true),
            };
            FormPage::edit(nav, id, fixed, form).refused(&failure, &start, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_reads_its_start_in_the_zone_the_script_named_or_utc() {
        let mut form = EventForm {
            starts_at: "2027-03-10T20:00".into(),
            utc_offset: "330".into(),
            ..EventForm::default()
        };
        assert_eq!(form.start().unwrap(), "2027-03-10T14:30:00Z");
        form.utc_offset = String::new();
        assert_eq!(form.start().unwrap(), "2027-03-10T20:00:00Z");
        form.starts_at = "next friday".into();
        assert_eq!(form.start(), Err(NotATime));
    }

    #[test]
    fn line_breaks_go_as_the_api_counts_them() {
        let form = EventForm {
            description: "Doors 19:00\r\nBar open\r\n\r\nNo re-entry".into(),
            ..EventForm::default()
        };
        assert_eq!(form.description(), "Doors 19:00\nBar open\n\nNo re-entry");
    }

    #[test]
    fn four_seats_per_buyer_unless_another_number_is_chosen() {
        let page = FormPage::create(Nav::default(), EventForm::default());
        let chosen: Vec<u8> = page
            .per_buyer()
            .into_iter()
            .filter_map(|(n, on)| on.then_some(n))
            .collect();
        assert_eq!(chosen, [4]);
        let page = FormPage::create(
            Nav::default(),
            EventForm {
                max_per_buyer: "10".into(),
                ..EventForm::default()
            },
        );
        assert_eq!(page.per_buyer()[9], (10, true));
    }
}
