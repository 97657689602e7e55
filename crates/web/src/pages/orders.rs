//! `/orders` and `/orders/{id}`: the buyer's orders, the countdown, paying and cancelling.

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
use crate::api::{Order, Visitor};

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
    pub status_label: &'static str,
    pub remaining_seconds: i64,
    /// When it expires, as a clock time in UTC.
    pub expires_at: String,
}

impl OrderView {
    fn of(order: Order, now: OffsetDateTime) -> Self {
        let expires = OffsetDateTime::parse(&order.expires_at, &Rfc3339).ok();
        // Rounded up, so a live order never shows 0:00.
        let remaining_ms = expires.map_or(0, |e| (e - now).whole_milliseconds().max(0));
        let remaining_seconds = i64::try_from((remaining_ms + 999) / 1000).unwrap_or(i64::MAX);
        let open = matches!(order.status.as_str(), "created" | "awaiting:payment");
        let past = remaining_ms == 0;
        let complete = order.status == "complete";
        let cancelled = order.status == "cancelled";
        // A cancelled order past its expiry ran out of time; one cancelled earlier was cancelled
        // by the buyer. An open order past its expiry is being expired as we speak.
        let expired = (cancelled || open) && past;
        let status_label = match (complete, expired, cancelled, open) {
            (true, _, _, _) => "Paid",
            (_, true, _, _) => "Expired",
            (_, _, true, _) => "Cancelled",
            (_, _, _, true) => "Awaiting payment",
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
struct OrderPage {
    nav: Nav,
    order: OrderView,
    error: Option<String>,
    /// The payment went through but the order has not turned `complete` yet.
    confirming: bool,
    /// Stripe's publishable key: Stripe's card element instead of the test cards.
    stripe_key: Option<String>,
}

#[derive(Deserialize)]
struct Shown {
    paid: Option<u8>,
}

async fn show(
    Extract(api): Extract<State>,
    Extension(card_form): Extension<CardForm>,
    SignedIn { nav, visitor, .. }: SignedIn,
    Path(id): Path<Uuid>,
    Query(shown): Query<Shown>,
) -> Response {
    let here = format!("/orders/{id}");
    match api.order(&visitor, id).await {
        Ok(order) => {
            let order = OrderView::of(order, OffsetDateTime::now_utc());
            let confirming = shown.paid.is_some() && !order.complete;
            render(
                StatusCode::OK,
                &OrderPage {
                    nav,
                    order,
                    error: None,
                    confirming,
                    stripe_key: card_form.stripe_publishable_key,
                },
            )
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
    SignedIn { nav, visitor, .. }: SignedIn,
    Path(id): Path<Uuid>,
    Form(payment): Form<Payment>,
) -> Response {
    let here = format!("/orders/{id}");

    let token = if payment.token.trim().is_empty() {
        payment.card.trim()
    } else {
        payment.token.trim()
    };
    match api.pay(&visitor, id, token).await {
        Ok(_) => {
            if wait_until_complete(&api, &visitor, id).await {
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
            match api.order(&visitor, id).await {
                Ok(order) => {
                    let order = OrderView::of(order, OffsetDateTime::now_utc());
                    let status = failure.status.unwrap_or(StatusCode::BAD_GATEWAY);
                    render(
                        status,
                        &OrderPage {
                            nav,
                            order,
                            error: Some(message),
                            confirming: false,
                            stripe_key: card_form.stripe_publishable_key,
                        },
                    )
                }
                Err(other) => failure_page(&other, &here, true),
            }
        }
    }
}

/// Payment completes the order through an event; give it a moment so the buyer lands on a
/// page that says "Paid".
async fn wait_until_complete(api: &crate::api::Api, visitor: &Visitor, id: Uuid) -> bool {
    let deadline = tokio::time::Instant::now() + CONFIRM_WAIT;
    while tokio::time::Instant::now() < deadline {
        if api
            .order(visitor, id)
            .await
            .is_ok_and(|o| o.status == "complete")
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
    SignedIn { nav, visitor, .. }: SignedIn,
    Path(id): Path<Uuid>,
) -> Response {
    let here = format!("/orders/{id}");

    match api.cancel_order(&visitor, id).await {
        Ok(()) => Redirect::to(&here).into_response(),
        Err(failure) if failure.is(StatusCode::CONFLICT) => match api.order(&visitor, id).await {
            Ok(order) => {
                let order = OrderView::of(order, OffsetDateTime::now_utc());
                render(
                    StatusCode::CONFLICT,
                    &OrderPage {
                        nav,
                        order,
                        error: Some(failure.sentence()),
                        confirming: false,
                        stripe_key: card_form.stripe_publishable_key,
                    },
                )
            }
            Err(other) => failure_page(&other, &here, true),
        },
        Err(failure) => failure_page(&failure, &here, true),
    }
}
