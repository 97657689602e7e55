//! `/events/mine`: the organiser's events, newest first, each with its seats sold (held by a
//! live or paid order: seats − available) of its seats, and a link to edit it.
//!
//! The API lists an organiser's newest 100 events and pages no further, so this page asks
//! for those once and shows them ten at a time (`?page=N`), and says when there may be more.

use askama::Template;
use axum::{
    extract::{Query, State as Extract, rejection::QueryRejection},
    http::StatusCode,
    response::Response,
};
use serde::Deserialize;
use time::OffsetDateTime;

use super::EventView;
use crate::pages::{Nav, SignedIn, State, failure_page, message_page, render};

/// Events per page.
const PAGE: usize = 10;
/// The most `GET /api/events/mine` lists.
const MOST: u32 = 100;
const MINE: &str = "/events/mine";

#[derive(Debug, Default, Deserialize)]
pub struct Paging {
    page: Option<String>,
}

#[derive(Template)]
#[template(path = "my_events.html")]
struct MyEventsPage {
    nav: Nav,
    events: Vec<EventView>,
    previous: Option<String>,
    next: Option<String>,
    /// The API listed as many as it lists: older events may not be shown.
    capped: bool,
}

/// Page `n` (from 1) of `total` events: the range shown, and the addresses either side;
/// `None` for a page that does not exist (the first always does, empty or not).
fn window(
    n: usize,
    total: usize,
) -> Option<(std::ops::Range<usize>, Option<String>, Option<String>)> {
    let start = (n.checked_sub(1)?).checked_mul(PAGE)?;
    if n > 1 && start >= total {
        return None;
    }
    let end = (start + PAGE).min(total);
    let address = |n: usize| {
        if n == 1 {
            MINE.to_owned()
        } else {
            format!("{MINE}?page={n}")
        }
    };
    let previous = (n > 1).then(|| address(n - 1));
    let next = (end < total).then(|| address(n + 1));
    Some((start..end, previous, next))
}

pub(super) async fn list(
    Extract(api): Extract<State>,
    SignedIn { nav, visitor, .. }: SignedIn,
    paging: Result<Query<Paging>, QueryRejection>,
) -> Response {
    let n = match paging.map(|Query(p)| p.page) {
        Ok(None) => Some(1),
        Ok(Some(page)) => page.parse::<usize>().ok(),
        Err(_) => None,
    };
    let events = match api.my_events(&visitor, MOST).await {
        Ok(events) => events,
        Err(failure) => return failure_page(&failure, MINE, true),
    };
    let Some((range, previous, next)) = n.and_then(|n| window(n, events.len())) else {
        return message_page(
            StatusCode::NOT_FOUND,
            "Page not found",
            "This address asks for a page of your events that does not exist. Start again from the first page.",
        );
    };
    let capped = events.len() >= MOST as usize;
    let now = OffsetDateTime::now_utc();
    let events = events
        .into_iter()
        .skip(range.start)
        .take(range.len())
        .map(|e| EventView::of(e, now))
        .collect();
    render(
        StatusCode::OK,
        &MyEventsPage {
            nav,
            events,
            previous,
            next,
            capped,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_of_ten_link_either_way_and_only_to_pages_that_exist() {
        let (range, previous, next) = window(1, 25).unwrap();
        assert_eq!(range, 0..10);
        assert_eq!(
            (previous, next.as_deref()),
            (None, Some("/events/mine?page=2"))
        );
        let (range, previous, next) = window(3, 25).unwrap();
        assert_eq!(range, 20..25);
        assert_eq!(
            (previous.as_deref(), next),
            (Some("/events/mine?page=2"), None)
        );
        assert_eq!(window(2, 20).unwrap().1.as_deref(), Some("/events/mine"));
        assert_eq!(window(1, 0).unwrap().0, 0..0);
        assert!(window(3, 20).is_none());
        assert!(window(0, 20).is_none());
        assert!(window(usize::MAX, 20).is_none());
    }
}
