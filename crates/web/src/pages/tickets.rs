//! `/tickets/new`, `/tickets/{id}`, `/tickets/{id}/edit`, `/tickets/{id}/purchase`: selling,
//! looking at, editing and buying one ticket.
//!
//! The forms take prices as people type them (`$25`, `25,50`) and send the API a plain
//! decimal ([`super::price`]); a listing or an edit that goes through lands on the ticket's
//! page with "Listed." or "Saved." on top ([`super::flash`]).

use std::time::Duration;

use askama::Template;
use axum::{
    Form, Router,
    extract::State as Extract,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use serde::Deserialize;
use ticketing_common::session::CurrentUser;
use uuid::Uuid;

use super::{
    MaybeSignedIn, Nav, PageId, SignedIn, State, failure_page,
    flash::{self, Done, Flash},
    layout::back_to,
    message_page, money,
    price::{self, NotAPrice},
    render, signin_redirect,
};
use crate::api::{Api, ApiFailure, Ticket, TicketState, Visitor};

pub fn router() -> Router<State> {
    Router::new()
        .route("/tickets/new", get(new_form).post(create))
        .route("/tickets/{id}", get(show))
        .route("/tickets/{id}/edit", get(edit_form).post(update))
        .route("/tickets/{id}/purchase", get(back_to_ticket).post(purchase))
}

#[derive(Deserialize)]
pub struct TicketForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    price: String,
}

/// The sell form and the edit form: one template, two targets.
#[derive(Template)]
#[template(path = "ticket_form.html")]
struct FormPage {
    nav: Nav,
    heading: String,
    action: String,
    submit: &'static str,
    title: String,
    price: String,
    title_error: Option<String>,
    price_error: Option<String>,
    general: Vec<String>,
}

impl FormPage {
    /// The form again with the API's refusal next to each field; `price` says whether the
    /// typed price was a number at all (if not, the API was sent none, and the message
    /// under the price is ours).
    fn refused(mut self, failure: &ApiFailure, price: &Result<String, NotAPrice>) -> Response {
        self.title_error = failure.for_field("title");
        self.price_error = match price {
            Ok(_) => failure.for_field("price"),
            Err(_) => Some(NotAPrice::MESSAGE.to_owned()),
        };
        self.general = failure.general(&["title", "price"]);
        let status = failure
            .status
            .filter(|s| s.is_client_error())
            .unwrap_or(StatusCode::BAD_GATEWAY);
        render(status, &self)
    }
}

fn sell_page(nav: Nav, title: String, price: String) -> FormPage {
    FormPage {
        nav,
        heading: "Sell a ticket".into(),
        action: "/tickets/new".into(),
        submit: "List ticket",
        title,
        price,
        title_error: None,
        price_error: None,
        general: Vec::new(),
    }
}

fn edit_page(nav: Nav, id: Uuid, title: String, price: String) -> FormPage {
    FormPage {
        nav,
        heading: "Edit your ticket".into(),
        action: format!("/tickets/{id}/edit"),
        submit: "Save changes",
        title,
        price,
        title_error: None,
        price_error: None,
        general: Vec::new(),
    }
}

async fn new_form(SignedIn { nav, .. }: SignedIn) -> Response {
    render(
        StatusCode::OK,
        &sell_page(nav, String::new(), String::new()),
    )
}

#[tracing::instrument(skip_all)]
async fn create(
    Extract(api): Extract<State>,
    SignedIn { nav, visitor, .. }: SignedIn,
    Form(form): Form<TicketForm>,
) -> Response {
    let price = price::normalise(&form.price);
    let sent = price.as_deref().ok();
    match api.create_ticket(&visitor, &form.title, sent).await {
        Ok(ticket) => flash::redirect(
            &format!("/tickets/{}", ticket.id),
            Flash::Done(Done::Listed),
        ),
        Err(failure) if failure.is(StatusCode::UNAUTHORIZED) => signin_redirect("/tickets/new"),
        Err(failure) => sell_page(nav, form.title, form.price).refused(&failure, &price),
    }
}

#[derive(Template)]
#[template(path = "ticket.html")]
struct TicketPage {
    nav: Nav,
    ticket: Ticket,
    price: String,
    signed_in: bool,
    is_seller: bool,
    /// The viewer's own order holding this ticket, if any.
    my_order: Option<(Uuid, String)>,
    notice: Option<String>,
}

impl TicketPage {
    fn available(&self) -> bool {
        self.ticket.state() == TicketState::Available
    }

    /// The ticket's state, in words, for anyone but its buyer.
    fn state_text(&self) -> &'static str {
        match (self.ticket.state(), self.is_seller) {
            (TicketState::Available, _) => "Available",
            (TicketState::Reserved, true) => {
                "Reserved: a buyer is paying for it now. If they do not pay in time, it goes back on sale."
            }
            (TicketState::Reserved, false) => {
                "Reserved: someone is paying for this ticket right now. It goes back on sale if they do not pay in time."
            }
            (TicketState::Sold, true) => "Sold: a buyer has paid for it.",
            (TicketState::Sold, false) => "Sold: this ticket is no longer on sale.",
            (TicketState::Taken, _) => "Reserved or sold: this ticket is not available right now.",
        }
    }

    /// `available`, `reserved`, `sold` or `taken`, for the style.
    fn state_class(&self) -> &'static str {
        match self.ticket.state() {
            TicketState::Available => "available",
            TicketState::Reserved => "reserved",
            TicketState::Sold => "sold",
            TicketState::Taken => "taken",
        }
    }
}

async fn ticket_page(
    api: &Api,
    visitor: &Visitor,
    nav: Nav,
    user: &CurrentUser,
    ticket: Ticket,
    notice: Option<String>,
) -> TicketPage {
    let me = user.0.as_ref().map(|u| u.id);
    // Only the buyer (and an operator, who reads any order) may read an order, so only the
    // buyer learns from it whether it is theirs and paid.
    let my_order = match (ticket.order_id, me) {
        (Some(order_id), Some(me)) => api
            .order(visitor, order_id)
            .await
            .ok()
            .filter(|o| o.user_id == me)
            .map(|o| {
                (
                    o.id,
                    if o.status == "complete" {
                        "Sold to you".to_owned()
                    } else {
                        "Reserved by you".to_owned()
                    },
                )
            }),
        _ => None,
    };
    TicketPage {
        nav,
        price: money(ticket.price),
        signed_in: me.is_some(),
        is_seller: me == Some(ticket.user_id),
        my_order,
        ticket,
        notice,
    }
}

async fn show(
    Extract(api): Extract<State>,
    MaybeSignedIn { user, nav }: MaybeSignedIn,
    visitor: Visitor,
    PageId(id): PageId,
) -> Response {
    match api.ticket(&visitor, id).await {
        Ok(ticket) => {
            let page = ticket_page(&api, &visitor, nav, &user, ticket, None).await;
            render(StatusCode::OK, &page)
        }
        Err(failure) => failure_page(&failure, &format!("/tickets/{id}"), user.0.is_some()),
    }
}

/// How long a purchase waits for the orders service to learn of a brand-new ticket.
const NEW_TICKET_GRACE: Duration = Duration::from_secs(5);

/// A reopened `/purchase` address: the ticket's page.
async fn back_to_ticket(PageId(id): PageId) -> Response {
    back_to(&format!("/tickets/{id}"))
}

#[tracing::instrument(skip_all, fields(ticket_id = %id))]
async fn purchase(
    Extract(api): Extract<State>,
    signed_in: SignedIn,
    PageId(id): PageId,
) -> Response {
    let here = format!("/tickets/{id}");
    let user = signed_in.user();
    let nav = signed_in.nav;
    let visitor = signed_in.visitor;

    let deadline = tokio::time::Instant::now() + NEW_TICKET_GRACE;
    let outcome = loop {
        match api.create_order(&visitor, id).await {
            // Orders learns tickets from events: a ticket listed a moment ago may be unknown
            // to it yet, while tickets itself knows it.
            Err(failure)
                if failure.is(StatusCode::NOT_FOUND)
                    && tokio::time::Instant::now() < deadline
                    && api.ticket(&visitor, id).await.is_ok() =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => break other,
        }
    };
    match outcome {
        Ok(order) => Redirect::to(&format!("/orders/{}", order.id)).into_response(),
        Err(failure) if failure.is(StatusCode::UNAUTHORIZED) => signin_redirect(&here),
        Err(failure) => match api.ticket(&visitor, id).await {
            Ok(ticket) => {
                let notice = if failure.is(StatusCode::CONFLICT) {
                    format!(
                        "Sorry, this ticket has just been taken by someone else. ({})",
                        failure.sentence()
                    )
                } else {
                    failure.sentence()
                };
                let page = ticket_page(&api, &visitor, nav, &user, ticket, Some(notice)).await;
                render(failure.status.unwrap_or(StatusCode::BAD_GATEWAY), &page)
            }
            Err(other) => failure_page(&other, &here, true),
        },
    }
}

async fn edit_form(
    Extract(api): Extract<State>,
    SignedIn {
        me, nav, visitor, ..
    }: SignedIn,
    PageId(id): PageId,
) -> Response {
    let here = format!("/tickets/{id}/edit");
    match api.ticket(&visitor, id).await {
        Ok(ticket) if ticket.user_id != me.id => message_page(
            StatusCode::FORBIDDEN,
            "Not your ticket",
            "Only the seller can edit this ticket.",
        ),
        Ok(ticket) => match not_editable(ticket.state()) {
            // Said before the seller types anything, rather than as a refusal on save.
            Some(why) => message_page(
                StatusCode::CONFLICT,
                "This ticket cannot be edited now",
                why,
            ),
            None => {
                let price = format!("{:.2}", ticket.price);
                render(StatusCode::OK, &edit_page(nav, id, ticket.title, price))
            }
        },
        Err(failure) => failure_page(&failure, &here, true),
    }
}

/// Why a ticket in `state` cannot be edited, if it cannot.
pub(super) fn not_editable(state: TicketState) -> Option<&'static str> {
    match state {
        TicketState::Available => None,
        TicketState::Reserved => Some(
            "A buyer is paying for it right now, and they pay the price they saw. If they do not pay in time, it is back on sale and yours to edit again.",
        ),
        TicketState::Sold => {
            Some("It has been sold: its title and price are what the buyer paid for.")
        }
        TicketState::Taken => Some(
            "It is reserved by a buyer or sold. If the buyer does not pay in time, it is back on sale and yours to edit again.",
        ),
    }
}

#[tracing::instrument(skip_all, fields(ticket_id = %id))]
async fn update(
    Extract(api): Extract<State>,
    SignedIn { nav, visitor, .. }: SignedIn,
    PageId(id): PageId,
    Form(form): Form<TicketForm>,
) -> Response {
    let here = format!("/tickets/{id}/edit");
    let price = price::normalise(&form.price);
    let sent = price.as_deref().ok();
    match api.update_ticket(&visitor, id, &form.title, sent).await {
        Ok(_) => flash::redirect(&format!("/tickets/{id}"), Flash::Done(Done::Saved)),
        Err(failure)
            if failure.is(StatusCode::UNAUTHORIZED) || failure.is(StatusCode::NOT_FOUND) =>
        {
            failure_page(&failure, &here, true)
        }
        Err(failure) => edit_page(nav, id, form.title, form.price).refused(&failure, &price),
    }
}
