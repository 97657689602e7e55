//! `/listings`: the seller's own tickets in every state, newest first, a page at a time; and
//! `/tickets/{id}/withdraw`, taking an available one off sale after a confirmation page (a
//! plain form: no script needed).
//!
//! Editing and withdrawing are offered on available tickets only; for the others the API
//! would refuse (409), so the pages say why instead of offering a button that fails.

use askama::Template;
use axum::{
    Router,
    extract::{Query, State as Extract},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use uuid::Uuid;

use super::{
    Nav, PageId, SignedIn, State, failure_page,
    flash::{self, Done, Flash},
    message_page, money,
    paging::{Cursor, Paged, Pager, no_such_page, paged},
    render,
    tickets::not_editable,
};
use crate::api::{Ticket, TicketState};

/// Listings per page: each row carries its links and labels, and a page stays under 20 KB
/// with long titles.
const PAGE: u32 = 10;
const LISTINGS: &str = "/listings";

pub fn router() -> Router<State> {
    Router::new()
        .route(LISTINGS, get(list))
        .route("/tickets/{id}/withdraw", get(confirm).post(withdraw))
}

/// One listing as the page shows it.
pub struct Listing {
    pub id: Uuid,
    pub title: String,
    pub price: String,
    /// `available`, `reserved`, `sold` (or `taken`, when the API does not say which).
    pub state: &'static str,
    pub label: &'static str,
}

impl Listing {
    fn of(ticket: Ticket) -> Listing {
        let (state, label) = match ticket.state() {
            TicketState::Available => ("available", "Available"),
            TicketState::Reserved => ("reserved", "Reserved"),
            TicketState::Sold => ("sold", "Sold"),
            TicketState::Taken => ("taken", "Reserved or sold"),
        };
        Listing {
            id: ticket.id,
            price: money(ticket.price),
            title: ticket.title,
            state,
            label,
        }
    }

    /// Edit and Withdraw are for available tickets only.
    pub fn available(&self) -> bool {
        self.state == "available"
    }
}

#[derive(Template)]
#[template(path = "listings.html")]
struct ListingsPage {
    nav: Nav,
    listings: Vec<Listing>,
    pager: Pager,
}

async fn list(
    Extract(api): Extract<State>,
    SignedIn { nav, visitor, .. }: SignedIn,
    Query(cursor): Query<Cursor>,
) -> Response {
    let Some(page) = cursor.page() else {
        return no_such_page();
    };
    match api.my_tickets(&visitor, PAGE + 1, page).await {
        Ok(tickets) => match paged(page, tickets, PAGE as usize) {
            Paged::First => Redirect::to(LISTINGS).into_response(),
            Paged::Shown(tickets, pager) => render(
                StatusCode::OK,
                &ListingsPage {
                    nav,
                    listings: tickets.into_iter().map(Listing::of).collect(),
                    pager,
                },
            ),
        },
        Err(failure) => failure_page(&failure, LISTINGS, true),
    }
}

#[derive(Template)]
#[template(path = "withdraw.html")]
struct WithdrawPage {
    nav: Nav,
    listing: Listing,
}

/// "Withdraw this ticket?", for the seller's available ticket; for any other, why not.
async fn confirm(
    Extract(api): Extract<State>,
    SignedIn {
        me, nav, visitor, ..
    }: SignedIn,
    PageId(id): PageId,
) -> Response {
    match api.ticket(&visitor, id).await {
        Ok(ticket) if ticket.user_id != me.id => message_page(
            StatusCode::FORBIDDEN,
            "Not your ticket",
            "Only the seller can withdraw this ticket.",
        ),
        Ok(ticket) => match not_editable(ticket.state()) {
            Some(why) => message_page(
                StatusCode::CONFLICT,
                "This ticket cannot be withdrawn now",
                why,
            ),
            None => render(
                StatusCode::OK,
                &WithdrawPage {
                    nav,
                    listing: Listing::of(ticket),
                },
            ),
        },
        Err(failure) => failure_page(&failure, &format!("/tickets/{id}/withdraw"), true),
    }
}

#[tracing::instrument(skip_all, fields(ticket_id = %id))]
async fn withdraw(
    Extract(api): Extract<State>,
    SignedIn { visitor, .. }: SignedIn,
    PageId(id): PageId,
) -> Response {
    match api.withdraw_ticket(&visitor, id).await {
        Ok(()) => flash::redirect(LISTINGS, Flash::Done(Done::Withdrawn)),
        // Reserved or sold meanwhile, or already withdrawn (a second click): the listings
        // show where things stand, with the API's reason on top.
        Err(failure) if failure.is(StatusCode::CONFLICT) => flash::redirect(
            LISTINGS,
            Flash::Refused(format!(
                "The ticket was not withdrawn: {}",
                failure.sentence()
            )),
        ),
        Err(failure) if failure.is(StatusCode::NOT_FOUND) => flash::redirect(
            LISTINGS,
            Flash::Refused(
                "There is no such ticket any more: it may have been withdrawn already.".into(),
            ),
        ),
        Err(failure) => failure_page(&failure, &format!("/tickets/{id}/withdraw"), true),
    }
}
