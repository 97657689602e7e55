//! `/orders` and `/orders/{id}`: the buyer's orders, the countdown, paying and cancelling.
//!
//! Operators may read anyone's order (the API lets them): the page then shows it without the
//! buyer's controls, and with a link to refund it once paid ([`super::refunds`]).

use std::time::Duration;

use askama::Template;
use axum::{
    Extension, Form, Router,
    extract::{Path, Query, State as Extract},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use serde::Deserialize;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use uuid::Uuid;

use super::{CardForm, Nav, SignedIn, State, failure_page, money, render};
use crate::api::{Api, Order, Visitor};

pub fn router() -> Router<State> {
    Router::new()
        .route("/orders", get(list))
        .route("/orders/{id}", get(show))
        .route("/orders/{id}/pay", post(pay))
        .route("/orders/{id}/cancel", post(cancel))
}

/// An order as the pages show it, with its time left computed from the server's clock.
pub struct OrderView {
    pub id: Uuid,
    pub ticket_id: Uuid,
    pub title: String,
    pub price: String,
    /// `created` or `awaiting:payment` and not yet past `expiresAt`.
    pub live: bool,
    pub complete: bool,
    /// Cancelled, or past its time without a payment.
    pub expired: bool,
    pub cancelled: bool,
    /// Paid, then refunded by an operator (final).
    pub refunded: bool,
    pub status_label: &'static str,
    pub remaining_seconds: i64,
    /// When it expires, as a clock time in UTC.
    pub expires_at: String,
}

impl OrderView {
    pub(super) fn of(order: Order, now: OffsetDateTime) -> Self {
        let expires = OffsetDateTime::parse(&order.expires_at, &Rfc3339).ok();
        // Rounded up, so a live order never shows 0:00.
        let remaining_ms = expires.map_or(0, |e| (e - now).whole_milliseconds().max(0));
        let remaining_seconds = i64::try_from((remaining_ms + 999) / 1000).unwrap_or(i64::MAX);
        let open = matches!(order.status.as_str(), "created" | "awaiting:payment");
        let past = remaining_ms == 0;
        let complete = order.status == "complete";
        let cancelled = order.status == "cancelled";
        let refunded = order.status == "refunded";
        // A cancelled order past its expiry ran out of time; one cancelled earlier was cancelled
        // by the buyer. An open order past its expiry is being expired as we speak.
        let expired = (cancelled || open) && past;
        let status_label = match (complete, refunded, expired, cancelled, open) {
            (true, _, _, _, _) => "Paid",
            (_, true, _, _, _) => "Refunded",
            (_, _, true, _, _) => "Expired",
            (_, _, _, true, _) => "Cancelled",
            (_, _, _, _, true) => "Awaiting payment",
            _ => "Unknown",
        };
        OrderView {
            id: order.id,
            ticket_id: order.ticket.id,
            price: money(order.ticket.price),
            title: order.ticket.title,
            live: open && !past,
            complete,
            expired,
            cancelled: cancelled && !expired,
            refunded,
            status_label,
            remaining_seconds,
            expires_at: expires.map_or(order.expires_at, |e| {
                format!("{:02}:{:02}:{:02} UTC", e.hour(), e.minute(), e.second())
            }),
        }
    }

    /// `m:ss`, as the countdown starts before its script runs.
    pub fn remaining(&self) -> String {
        format!(
            "{}:{:02}",
            self.remaining_seconds / 60,
            self.remaining_seconds % 60
        )
    }
}

#[derive(Template)]
#[template(path = "orders.html")]
struct OrdersPage {
    nav: Nav,
    orders: Vec<OrderView>,
}

async fn list(Extract(api): Extract<State>, SignedIn { nav, visitor, .. }: SignedIn) -> Response {
    match api.orders(&visitor).await {
        Ok(orders) => {
            let now = OffsetDateTime::now_utc();
            let orders = orders.into_iter().map(|o| OrderView::of(o, now)).collect();
            render(StatusCode::OK, &OrdersPage { nav, orders })
        }
        Err(failure) => failure_page(&failure, "/orders", true),
    }
}

#[derive(Template)]
#[template(path = "order.html")]
pub(super) struct OrderPage {
    nav: Nav,
    order: OrderView,
    /// The visitor placed this order: only then does the page offer to pay or cancel it.
    mine: bool,
    /// An operator looks at a paid order: the page links to the refund's confirmation.
    refundable: bool,
    pub(super) error: Option<String>,
    /// The payment went through but the order has not turned `complete` yet.
    confirming: bool,
    /// An operator's refund went through and the order shows it.
    refund_done: bool,
    /// An operator's refund went through but the order has not turned `refunded` yet.
    refund_under_way: bool,
    /// Stripe's publishable key: Stripe's card element instead of the test cards.
    stripe_key: Option<String>,
}

impl OrderPage {
    /// The order as `viewer` sees it, with nothing happening.
    pub(super) fn new(viewer: &SignedIn, order: Order, card_form: &CardForm) -> Self {
        let mine = order.user_id == viewer.me.id;
        let order = OrderView::of(order, OffsetDateTime::now_utc());
        OrderPage {
            nav: viewer.nav.clone(),
            refundable: viewer.operator && order.complete,
            mine,
            order,
            error: None,
            confirming: false,
            refund_done: false,
            refund_under_way: false,
            stripe_key: card_form.stripe_publishable_key.clone(),
        }
    }
}

#[derive(Deserialize)]
struct Shown {
    /// Back from paying.
    paid: Option<u8>,
    /// Back from an operator's refund.
    refunded: Option<u8>,
}

async fn show(
    Extract(api): Extract<State>,
    Extension(card_form): Extension<CardForm>,
    viewer: SignedIn,
    Path(id): Path<Uuid>,
    Query(shown): Query<Shown>,
) -> Response {
    let here = format!("/orders/{id}");
    match api.order(&viewer.visitor, id).await {
        Ok(order) => {
            let mut page = OrderPage::new(&viewer, order, &card_form);
            page.confirming = shown.paid.is_some() && !page.order.complete && !page.order.refunded;
            if shown.refunded.is_some() && viewer.operator {
                page.refund_done = page.order.refunded;
                page.refund_under_way = page.order.complete;
                page.refundable = false;
            }
            render(StatusCode::OK, &page)
        }
        Err(failure) => failure_page(&failure, &here, true),
    }
}

#[derive(Deserialize)]
pub struct Payment {
    #[serde(default)]
    card: String,
    /// A provider token typed by hand; wins over the test-card choice when filled in.
    #[serde(default)]
    token: String,
}

/// How long paying waits for the order to turn `complete` before showing "confirming".
const CONFIRM_WAIT: Duration = Duration::from_secs(5);

#[tracing::instrument(skip_all, fields(order_id = %id))]
async fn pay(
    Extract(api): Extract<State>,
    Extension(card_form): Extension<CardForm>,
    viewer: SignedIn,
    Path(id): Path<Uuid>,
    Form(payment): Form<Payment>,
) -> Response {
    let here = format!("/orders/{id}");
    let visitor = &viewer.visitor;

    let token = if payment.token.trim().is_empty() {
        payment.card.trim()
    } else {
        payment.token.trim()
    };
    match api.pay(visitor, id, token).await {
        Ok(_) => {
            if wait_for_status(&api, visitor, id, "complete").await {
                Redirect::to(&here).into_response()
            } else {
                Redirect::to(&format!("{here}?paid=1")).into_response()
            }
        }
        Err(failure)
            if failure.is(StatusCode::UNAUTHORIZED) || failure.is(StatusCode::NOT_FOUND) =>
        {
            failure_page(&failure, &here, true)
        }
        Err(failure) => {
            let message = if failure.is(StatusCode::PAYMENT_REQUIRED) {
                format!("{} Try another card.", failure.sentence())
            } else {
                failure.sentence()
            };
            match api.order(visitor, id).await {
                Ok(order) => {
                    let mut page = OrderPage::new(&viewer, order, &card_form);
                    page.error = Some(message);
                    render(failure.status.unwrap_or(StatusCode::BAD_GATEWAY), &page)
                }
                Err(other) => failure_page(&other, &here, true),
            }
        }
    }
}

/// Payment completes the order, and a refund refunds it, through events; give it a moment
/// (up to [`CONFIRM_WAIT`]) so the visitor lands on a page that says "Paid" or "Refunded".
/// Whether the order reached `status` in time.
pub(super) async fn wait_for_status(api: &Api, visitor: &Visitor, id: Uuid, status: &str) -> bool {
    let deadline = tokio::time::Instant::now() + CONFIRM_WAIT;
    while tokio::time::Instant::now() < deadline {
        if api
            .order(visitor, id)
            .await
            .is_ok_and(|o| o.status == status)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tracing::instrument(skip_all, fields(order_id = %id))]
async fn cancel(
    Extract(api): Extract<State>,
    Extension(card_form): Extension<CardForm>,
    viewer: SignedIn,
    Path(id): Path<Uuid>,
) -> Response {
    let here = format!("/orders/{id}");
    let visitor = &viewer.visitor;

    match api.cancel_order(visitor, id).await {
        Ok(()) => Redirect::to(&here).into_response(),
        Err(failure) if failure.is(StatusCode::CONFLICT) => match api.order(visitor, id).await {
            Ok(order) => {
                let mut page = OrderPage::new(&viewer, order, &card_form);
                page.error = Some(failure.sentence());
                render(StatusCode::CONFLICT, &page)
            }
            Err(other) => failure_page(&other, &here, true),
        },
        Err(failure) => failure_page(&failure, &here, true),
    }
}
