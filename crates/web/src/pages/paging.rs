//! Pages of a list of tickets, newest first, by cursor: `?before=<id>` (older than that
//! ticket) and `?after=<id>` (newer than it), as the API pages them.
//!
//! Each page asks the API for one ticket more than it shows, so it knows whether there is
//! a page beyond it in the direction it went, and links to the next page (older) and the
//! previous one (newer) only when they hold something.

use axum::{http::StatusCode, response::Response};
use serde::Deserialize;
use uuid::Uuid;

use super::message_page;
use crate::api::{Page, Ticket};

/// `?before=` / `?after=` as typed; an id that is not one is the 404 page.
#[derive(Debug, Default, Deserialize)]
pub struct Cursor {
    before: Option<String>,
    after: Option<String>,
}

impl Cursor {
    /// The page asked for; `None` for a cursor that is not a ticket id.
    pub fn page(&self) -> Option<Page> {
        match (self.before.as_deref(), self.after.as_deref()) {
            (Some(before), _) => Uuid::try_parse(before).ok().map(Page::Before),
            (None, Some(after)) => Uuid::try_parse(after).ok().map(Page::After),
            (None, None) => Some(Page::Newest),
        }
    }
}

/// The 404 page for a cursor that names no ticket.
pub fn no_such_page() -> Response {
    message_page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "This address asks for a page of tickets that does not exist. Start again from the first page.",
    )
}

/// The links around one page of tickets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pager {
    /// The previous page (newer tickets): `?after=<id>`.
    pub newer: Option<Uuid>,
    /// The next page (older tickets): `?before=<id>`.
    pub older: Option<Uuid>,
    /// Not the first page: a link back to the newest.
    pub paged: bool,
}

/// What a page shows.
#[derive(Debug)]
pub enum Paged {
    /// These tickets, with these links.
    Shown(Vec<Ticket>, Pager),
    /// A page of newer tickets that reached the newest: it is the first page (or less, if
    /// tickets went meanwhile), which the caller redirects to.
    First,
}

/// Splits the `size + 1` tickets the API answered for `page` into the `size` shown and the
/// links around them.
pub fn paged(page: Page, mut tickets: Vec<Ticket>, size: usize) -> Paged {
    let beyond = tickets.len() > size;
    match page {
        Page::Newest | Page::Before(_) => {
            tickets.truncate(size);
            let older = beyond.then(|| tickets.last().map(|t| t.id)).flatten();
            let newer = match page {
                Page::Before(before) => Some(tickets.first().map_or(before, |t| t.id)),
                _ => None,
            };
            let paged = matches!(page, Page::Before(_));
            Paged::Shown(
                tickets,
                Pager {
                    newer,
                    older,
                    paged,
                },
            )
        }
        Page::After(after) => {
            if !beyond {
                return Paged::First;
            }
            // Newest first: the one too many is the newest, beyond this page.
            tickets.remove(0);
            let newer = tickets.first().map(|t| t.id);
            let older = Some(tickets.last().map_or(after, |t| t.id));
            Paged::Shown(
                tickets,
                Pager {
                    newer,
                    older,
                    paged: true,
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tickets(ids: &[u128]) -> Vec<Ticket> {
        ids.iter()
            .map(|&n| Ticket {
                id: Uuid::from_u128(n),
                title: format!("T{n}"),
                price: 1.0,
                user_id: Uuid::nil(),
                version: 0,
                order_id: None,
                status: None,
            })
            .collect()
    }

    fn shown(paged: Paged) -> (Vec<u128>, Pager) {
        match paged {
            Paged::Shown(t, pager) => (t.iter().map(|t| t.id.as_u128()).collect(), pager),
            Paged::First => panic!("expected a page"),
        }
    }

    fn id(n: u128) -> Option<Uuid> {
        Some(Uuid::from_u128(n))
    }

    #[test]
    fn the_first_page_links_to_older_tickets_only_when_there_are_some() {
        let (ids, pager) = shown(paged(Page::Newest, tickets(&[9, 8, 7]), 2));
        assert_eq!(ids, [9, 8]);
        assert_eq!(
            pager,
            Pager {
                newer: None,
                older: id(8),
                paged: false
            }
        );
        let (_, pager) = shown(paged(Page::Newest, tickets(&[9, 8]), 2));
        assert_eq!(pager.older, None);
    }

    #[test]
    fn an_older_page_links_back_to_the_newer_ones() {
        let (ids, pager) = shown(paged(
            Page::Before(Uuid::from_u128(8)),
            tickets(&[7, 6, 5]),
            2,
        ));
        assert_eq!(ids, [7, 6]);
        assert_eq!(
            pager,
            Pager {
                newer: id(7),
                older: id(6),
                paged: true
            }
        );
        let (ids, pager) = shown(paged(Page::Before(Uuid::from_u128(2)), tickets(&[]), 2));
        assert!(ids.is_empty());
        assert_eq!((pager.newer, pager.older), (id(2), None));
    }

    #[test]
    fn a_newer_page_shows_the_tickets_just_above_and_links_both_ways() {
        // Newer than 5: 8, 7, 6 (newest first); two fit, 8 is beyond.
        let (ids, pager) = shown(paged(
            Page::After(Uuid::from_u128(5)),
            tickets(&[8, 7, 6]),
            2,
        ));
        assert_eq!(ids, [7, 6]);
        assert_eq!(
            pager,
            Pager {
                newer: id(7),
                older: id(6),
                paged: true
            }
        );
    }

    #[test]
    fn a_newer_page_that_reaches_the_newest_is_the_first_page() {
        for newer in [&[7, 6][..], &[6], &[]] {
            assert!(matches!(
                paged(Page::After(Uuid::from_u128(5)), tickets(newer), 2),
                Paged::First
            ));
        }
    }

    #[test]
    fn a_cursor_that_is_not_an_id_is_no_page() {
        let cursor = Cursor {
            before: Some("<script>".into()),
            after: None,
        };
        assert_eq!(cursor.page(), None);
        assert_eq!(no_such_page().status(), StatusCode::NOT_FOUND);
        let cursor = Cursor {
            before: None,
            after: Some(Uuid::from_u128(3).to_string()),
        };
        assert_eq!(cursor.page(), Some(Page::After(Uuid::from_u128(3))));
        assert_eq!(Cursor::default().page(), Some(Page::Newest));
    }
}
