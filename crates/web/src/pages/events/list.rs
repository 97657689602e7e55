//! `/events`: upcoming events, soonest first, ten a page, with a search box (`?q=`, a GET
//! form, so a search is an address to share) and a link on to the next page (`?after=<id>`,
//! the last event shown, as the API pages them).

use askama::Template;
use axum::{
    extract::{Query, State as Extract, rejection::QueryRejection},
    http::StatusCode,
    response::Response,
};
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::EventView;
use crate::{
    api::{Visitor, events::search_words},
    pages::{MaybeSignedIn, Nav, State, encode, message_page, render},
};

/// Events per page: each row carries its time, venue and seats, and a page stays under
/// 20 KB with long titles.
const PAGE: u32 = 10;

#[derive(Debug, Default, Deserialize)]
pub struct Search {
    q: Option<String>,
    after: Option<String>,
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage {
    nav: Nav,
    /// The search as typed (kept in the box).
    q: String,
    /// There are words to search for.
    searching: bool,
    events: Vec<EventView>,
    /// A page after the first.
    paged: bool,
    /// The next page's address.
    next: Option<String>,
    /// The API's refusal of the search, shown next to the box.
    error: Option<String>,
    signed_in: bool,
}

impl EventsPage {
    /// The first page's address for this search.
    fn first(&self) -> String {
        address(&self.q, None)
    }
}

/// `/events`, with the search `q` and the page after `after`.
fn address(q: &str, after: Option<Uuid>) -> String {
    let mut params = Vec::new();
    if search_words(q).is_some() {
        params.push(format!("q={}", encode(q.trim())));
    }
    if let Some(after) = after {
        params.push(format!("after={after}"));
    }
    if params.is_empty() {
        "/events".to_owned()
    } else {
        format!("/events?{}", params.join("&"))
    }
}

pub(super) async fn list(
    Extract(api): Extract<State>,
    MaybeSignedIn { user, nav }: MaybeSignedIn,
    visitor: Visitor,
    search: Result<Query<Search>, QueryRejection>,
) -> Response {
    let Ok(Query(search)) = search else {
        return no_such_page();
    };
    let after = match search.after.as_deref() {
        None | Some("") => None,
        Some(after) => match Uuid::try_parse(after) {
            Ok(after) => Some(after),
            Err(_) => return no_such_page(),
        },
    };
    let q = search.q.unwrap_or_default();
    let mut page = EventsPage {
        nav,
        searching: search_words(&q).is_some(),
        q,
        events: Vec::new(),
        paged: after.is_some(),
        next: None,
        error: None,
        signed_in: user.0.is_some(),
    };
    let words = page.searching.then_some(page.q.as_str());
    match api.events(&visitor, PAGE + 1, after, words).await {
        Ok(mut events) => {
            let beyond = events.len() > PAGE as usize;
            events.truncate(PAGE as usize);
            if beyond {
                page.next = events.last().map(|e| address(&page.q, Some(e.id)));
            }
            let now = OffsetDateTime::now_utc();
            page.events = events.into_iter().map(|e| EventView::of(e, now)).collect();
            render(StatusCode::OK, &page)
        }
        Err(failure) => {
            let status = failure
                .status
                .filter(|s| s.is_client_error())
                .unwrap_or(StatusCode::BAD_GATEWAY);
            page.error = Some(failure.sentence());
            render(status, &page)
        }
    }
}

/// The 404 page for an address that asks for no page of events.
fn no_such_page() -> Response {
    message_page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "This address asks for a page of events that does not exist. Start again from the list of events.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_address_keeps_the_search() {
        let id = Uuid::from_u128(7);
        assert_eq!(address("", None), "/events");
        assert_eq!(address(" !? ", None), "/events");
        assert_eq!(address(" jazz night ", None), "/events?q=jazz%20night");
        assert_eq!(
            address("jazz", Some(id)),
            format!("/events?q=jazz&after={id}")
        );
        assert_eq!(address("", Some(id)), format!("/events?after={id}"));
    }
}
