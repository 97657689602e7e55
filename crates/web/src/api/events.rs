//! Events with many seats (`/api/events`, served by tickets) and ordering the best available
//! seat of one (`POST /api/orders {eventId}`, served by orders).

use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{Api, ApiFailure, Order, Visitor};
use crate::pages::encode;

/// An event as the API shows it. `available` counts the seats no live or paid order holds.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: Uuid,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub venue: String,
    /// RFC 3339, UTC.
    pub starts_at: String,
    pub price: f64,
    pub seats: i64,
    pub available: i64,
    pub max_per_buyer: i64,
    pub user_id: Uuid,
    pub version: i64,
}

/// An event's fields as the forms send them. The texts go as typed; the others as the API
/// reads them, or `None` where the form could make nothing of what was typed (the API then
/// still checks every other field, and refuses the whole request).
#[derive(Debug, Clone, Default)]
pub struct EventFields<'a> {
    pub title: &'a str,
    pub venue: &'a str,
    pub description: &'a str,
    /// RFC 3339.
    pub starts_at: Option<&'a str>,
    /// A plain decimal, as [`crate::pages::price::normalise`] makes it.
    pub price: Option<&'a str>,
    /// A whole number, as typed.
    pub seats: Option<&'a str>,
    /// `None` for the API's default (4).
    pub max_per_buyer: Option<&'a str>,
}

/// The words of a search as the events API's full-text search reads them: joined by `+` (a
/// space once the API decodes the query), each word percent-encoded. Anything between words
/// (punctuation, which that search ignores anyway) is dropped. `None` for a search without
/// words.
pub fn search_words(q: &str) -> Option<String> {
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(encode)
        .collect();
    (!words.is_empty()).then(|| words.join("+"))
}

impl Api {
    /// `GET /api/events`: `limit` upcoming events, soonest first, after the event `after`,
    /// matching `q` (see [`search_words`]).
    pub async fn events(
        &self,
        v: &Visitor,
        limit: u32,
        after: Option<Uuid>,
        q: Option<&str>,
    ) -> Result<Vec<Event>, ApiFailure> {
        let mut path = format!("/api/events?limit={limit}");
        if let Some(after) = after {
            path.push_str(&format!("&after={after}"));
        }
        if let Some(words) = q.and_then(search_words) {
            path.push_str(&format!("&q={words}"));
        }
        Ok(self.call(v, reqwest::Method::GET, &path, None).await?.body)
    }

    /// `GET /api/events/mine`: the visitor's own newest `limit` (at most 100) events. The API
    /// pages further with `after`; the page shows these and pages through them itself.
    pub async fn my_events(&self, v: &Visitor, limit: u32) -> Result<Vec<Event>, ApiFailure> {
        let path = format!("/api/events/mine?limit={limit}");
        Ok(self.call(v, reqwest::Method::GET, &path, None).await?.body)
    }

    pub async fn event(&self, v: &Visitor, id: Uuid) -> Result<Event, ApiFailure> {
        let path = format!("/api/events/{id}");
        Ok(self.call(v, reqwest::Method::GET, &path, None).await?.body)
    }

    /// `POST /api/events`.
    pub async fn create_event(
        &self,
        v: &Visitor,
        fields: &EventFields<'_>,
    ) -> Result<Event, ApiFailure> {
        let body = json!({
            "title": fields.title,
            "venue": fields.venue,
            "description": fields.description,
            "startsAt": fields.starts_at,
            "price": fields.price,
            "seats": fields.seats,
            "maxPerBuyer": fields.max_per_buyer,
        });
        Ok(self
            .call(v, reqwest::Method::POST, "/api/events", Some(body))
            .await?
            .body)
    }

    /// `PUT /api/events/:id` with the fields an organiser may change (title, venue,
    /// description, start); price, seats and the per-buyer limit are not sent.
    pub async fn update_event(
        &self,
        v: &Visitor,
        id: Uuid,
        fields: &EventFields<'_>,
    ) -> Result<Event, ApiFailure> {
        let body = json!({
            "title": fields.title,
            "venue": fields.venue,
            "description": fields.description,
            "startsAt": fields.starts_at,
        });
        let path = format!("/api/events/{id}");
        Ok(self
            .call(v, reqwest::Method::PUT, &path, Some(body))
            .await?
            .body)
    }

    /// `POST /api/orders {eventId}`: an order for the event's best available seat.
    pub async fn order_seat(&self, v: &Visitor, event_id: Uuid) -> Result<Order, ApiFailure> {
        let body = json!({ "eventId": event_id });
        Ok(self
            .call::<Order>(v, reqwest::Method::POST, "/api/orders", Some(body))
            .await?
            .body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_goes_as_its_words_joined_by_plus() {
        assert_eq!(search_words("jazz").as_deref(), Some("jazz"));
        assert_eq!(
            search_words("  Jazz   night ").as_deref(),
            Some("Jazz+night")
        );
        assert_eq!(
            search_words("rock&roll, 100% live!").as_deref(),
            Some("rock+roll+100+live")
        );
        assert_eq!(search_words("O'Brien").as_deref(), Some("O+Brien"));
        // Letters beyond ASCII are words too, encoded as a URL must carry them.
        assert_eq!(search_words("café").as_deref(), Some("caf%C3%A9"));
        assert_eq!(search_words(" &%? "), None);
        assert_eq!(search_words(""), None);
    }
}
