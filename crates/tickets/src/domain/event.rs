//! Events with many seats: their rules and public shape. No I/O.

use serde::Serialize;
use serde_json::Value;
use ticketing_events::{Cents, EventDetails};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Title, parse_price};

/// Seats an event may have.
pub const MAX_SEATS: i64 = 100_000;
/// The most seats one buyer may hold of an event, and the default.
pub const MAX_PER_BUYER: i64 = 10;
pub const DEFAULT_PER_BUYER: i32 = 4;
/// The longest description, in characters.
pub const MAX_DESCRIPTION: usize = 5_000;

/// An event as stored and as every reader sees it: `{id, title, description, venue,
/// startsAt, price, seats, available, maxPerBuyer, userId, version}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub venue: String,
    /// RFC 3339, UTC.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime, example = "2026-12-12T20:00:00Z")]
    pub starts_at: OffsetDateTime,
    /// The price of every seat: a number with at most two decimals.
    #[schema(value_type = f64, example = 25.0)]
    #[sqlx(rename = "price_cents", try_from = "i64")]
    pub price: Cents,
    pub seats: i32,
    /// Seats not held by a live or paid order.
    pub available: i32,
    pub max_per_buyer: i32,
    pub user_id: Uuid,
    /// Starts at 0, grows by one per edit (not with sales).
    pub version: i64,
}

impl Event {
    pub fn details(&self) -> EventDetails {
        EventDetails {
            id: self.id,
            version: self.version,
            title: self.title.clone(),
            price: self.price,
            seats: self.seats,
            user_id: self.user_id,
            starts_at: self.starts_at,
            max_per_buyer: self.max_per_buyer,
        }
    }
}

/// What an organiser may change: everything but price, seats and the per-buyer limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventText {
    pub title: Title,
    pub venue: Title,
    pub description: String,
    pub starts_at: OffsetDateTime,
}

/// A new event, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub text: EventText,
    pub price: Cents,
    pub seats: i32,
    pub max_per_buyer: i32,
}

/// The fields that are fixed at creation, as a body may (re)state them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FixedFields {
    pub price: Option<Cents>,
    pub seats: Option<i32>,
    pub max_per_buyer: Option<i32>,
}

impl FixedFields {
    /// Whether the body changes any of them (restating the same value is allowed).
    pub fn change(&self, event: &Event) -> bool {
        self.price.is_some_and(|p| p != event.price)
            || self.seats.is_some_and(|s| s != event.seats)
            || self.max_per_buyer.is_some_and(|m| m != event.max_per_buyer)
    }
}

/// One field's refusal: `(field, message)`.
pub type FieldError = (&'static str, String);

/// Reads the editable fields of a body, every problem at once.
pub fn parse_text(
    body: &serde_json::Map<String, Value>,
    now: OffsetDateTime,
    errors: &mut Vec<FieldError>,
) -> Option<EventText> {
    let title = text_field(body, "title", "Title", errors);
    let venue = text_field(body, "venue", "Venue", errors);
    let description = match body.get("description") {
        None | Some(Value::Null) => Some(String::new()),
        Some(Value::String(text)) => {
            let text = text.trim();
            if text.chars().count() > MAX_DESCRIPTION {
                errors.push((
                    "description",
                    "Description must be at most 5000 characters".into(),
                ));
                None
            } else if ticketing_common::text::check(text, true).is_err() {
                errors.push((
                    "description",
                    "Description must not contain control characters".into(),
                ));
                None
            } else {
                Some(text.to_owned())
            }
        }
        Some(_) => {
            errors.push(("description", "Description must be a string".into()));
            None
        }
    };
    let starts_at = match body.get("startsAt") {
        None | Some(Value::Null) => {
            errors.push(("startsAt", "Start time is required".into()));
            None
        }
        Some(Value::String(text)) => match OffsetDateTime::parse(text.trim(), &Rfc3339) {
            Ok(at) if at <= now => {
                errors.push(("startsAt", "Start time must be in the future".into()));
                None
            }
            Ok(at) if at.year() > 9999 || at.year() < 1 => {
                errors.push(("startsAt", "Start time is out of range".into()));
                None
            }
            Ok(at) => Some(at.to_offset(time::UtcOffset::UTC)),
            Err(_) => {
                errors.push((
                    "startsAt",
                    "Start time must be an RFC 3339 date and time, e.g. 2026-12-12T20:00:00Z"
                        .into(),
                ));
                None
            }
        },
        Some(_) => {
            errors.push(("startsAt", "Start time must be a string".into()));
            None
        }
    };
    Some(EventText {
        title: title?,
        venue: venue?,
        description: description?,
        starts_at: starts_at?,
    })
}

/// Reads a new event, every problem at once.
pub fn parse_new(
    body: &serde_json::Map<String, Value>,
    now: OffsetDateTime,
) -> Result<NewEvent, Vec<FieldError>> {
    let mut errors = Vec::new();
    let text = parse_text(body, now, &mut errors);
    let price = parse_price(body.get("price").unwrap_or(&Value::Null))
        .map_err(|message| errors.push(("price", message.into())))
        .ok();
    let seats = whole(
        body.get("seats"),
        "seats",
        "Seats",
        1,
        MAX_SEATS,
        &mut errors,
    );
    let max_per_buyer = match body.get("maxPerBuyer") {
        None | Some(Value::Null) => Some(DEFAULT_PER_BUYER),
        value => whole(
            value,
            "maxPerBuyer",
            "Seats per buyer",
            1,
            MAX_PER_BUYER,
            &mut errors,
        ),
    };
    match (text, price, seats, max_per_buyer) {
        (Some(text), Some(price), Some(seats), Some(max_per_buyer)) if errors.is_empty() => {
            Ok(NewEvent {
                text,
                price,
                seats,
                max_per_buyer,
            })
        }
        _ => Err(errors),
    }
}

/// Reads the fixed fields a body states, if any; a malformed one is a field error.
pub fn parse_fixed(
    body: &serde_json::Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> FixedFields {
    let price = match body.get("price") {
        None | Some(Value::Null) => None,
        Some(value) => parse_price(value)
            .map_err(|message| errors.push(("price", message.into())))
            .ok(),
    };
    let seats = match body.get("seats") {
        None | Some(Value::Null) => None,
        value => whole(value, "seats", "Seats", 1, MAX_SEATS, errors),
    };
    let max_per_buyer = match body.get("maxPerBuyer") {
        None | Some(Value::Null) => None,
        value => whole(
            value,
            "maxPerBuyer",
            "Seats per buyer",
            1,
            MAX_PER_BUYER,
            errors,
        ),
    };
    FixedFields {
        price,
        seats,
        max_per_buyer,
    }
}

fn text_field(
    body: &serde_json::Map<String, Value>,
    field: &'static str,
    label: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Title> {
    let raw = match body.get(field) {
        None | Some(Value::Null) => "",
        Some(Value::String(text)) => text,
        Some(_) => {
            errors.push((field, format!("{label} must be a string")));
            return None;
        }
    };
    Title::parse(raw)
        .map_err(|message| errors.push((field, message.replacen("Title", label, 1))))
        .ok()
}

/// A whole number in `min..=max` (a JSON integer, or a string of digits).
fn whole(
    value: Option<&Value>,
    field: &'static str,
    label: &str,
    min: i64,
    max: i64,
    errors: &mut Vec<FieldError>,
) -> Option<i32> {
    let n = match value {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if (min..=max).contains(&n) => Some(n as i32),
        _ if value.is_none_or(Value::is_null) => {
            errors.push((field, format!("{label} is required")));
            None
        }
        _ => {
            errors.push((
                field,
                format!("{label} must be a whole number from {min} to {max}"),
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-12-01 12:00:00 UTC);

    fn body(value: Value) -> serde_json::Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn valid() -> Value {
        json!({"title": " Show ", "venue": "Hall", "startsAt": "2026-12-12T20:00:00+01:00",
               "price": "25.50", "seats": 5000})
    }

    #[test]
    fn a_valid_event_is_trimmed_converted_to_utc_and_defaults_four_per_buyer() {
        let event = parse_new(&body(valid()), NOW).unwrap();
        assert_eq!(event.text.title.as_str(), "Show");
        assert_eq!(event.text.starts_at, datetime!(2026-12-12 19:00:00 UTC));
        assert_eq!(event.text.starts_at.offset(), time::UtcOffset::UTC);
        assert_eq!(
            (event.price, event.seats, event.max_per_buyer),
            (Cents(2550), 5000, 4)
        );
        assert_eq!(event.text.description, "");
    }

    #[test]
    fn every_refused_field_is_named_at_once() {
        let errors = parse_new(
            &body(
                json!({"title": "", "venue": "a\u{0}b", "startsAt": "2020-01-01T00:00:00Z",
                         "price": 0, "seats": 100001, "maxPerBuyer": 11,
                         "description": "x".repeat(5001)}),
            ),
            NOW,
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|(f, _)| *f).collect();
        assert_eq!(
            fields,
            [
                "title",
                "venue",
                "description",
                "startsAt",
                "price",
                "seats",
                "maxPerBuyer"
            ]
        );
        let errors = parse_new(&body(json!({})), NOW).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["title", "venue", "startsAt", "price", "seats"]);
    }

    #[test]
    fn seat_counts_and_limits_are_whole_numbers_in_range() {
        for (seats, ok) in [
            (json!(1), true),
            (json!(100000), true),
            (json!(0), false),
            (json!(2.5), false),
            (json!("12"), true),
            (json!(true), false),
        ] {
            let mut value = valid();
            value["seats"] = seats.clone();
            assert_eq!(parse_new(&body(value), NOW).is_ok(), ok, "{seats}");
        }
        let mut value = valid();
        value["maxPerBuyer"] = json!(10);
        assert_eq!(parse_new(&body(value), NOW).unwrap().max_per_buyer, 10);
    }

    #[test]
    fn descriptions_keep_line_breaks_and_tabs_and_refuse_other_controls() {
        let mut value = valid();
        value["description"] = json!("Doors 19:00\n\tBar open");
        assert!(parse_new(&body(value.clone()), NOW).is_ok());
        value["description"] = json!("bell\u{7}");
        assert!(parse_new(&body(value), NOW).is_err());
    }

    #[test]
    fn restating_a_fixed_field_is_no_change_and_a_new_value_is() {
        let event = Event {
            id: Uuid::nil(),
            title: "Show".into(),
            description: String::new(),
            venue: "Hall".into(),
            starts_at: NOW,
            price: Cents(2500),
            seats: 10,
            available: 10,
            max_per_buyer: 4,
            user_id: Uuid::nil(),
            version: 0,
        };
        let mut errors = Vec::new();
        let same = parse_fixed(
            &body(json!({"price": 25, "seats": 10, "maxPerBuyer": 4})),
            &mut errors,
        );
        assert!(!same.change(&event));
        for changed in [
            json!({"price": 26}),
            json!({"seats": 11}),
            json!({"maxPerBuyer": 2}),
        ] {
            assert!(
                parse_fixed(&body(changed.clone()), &mut errors).change(&event),
                "{changed}"
            );
        }
        assert!(errors.is_empty());
    }
}
