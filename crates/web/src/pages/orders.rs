//! `/orders` and `/orders/{id}`: the buyer's orders, the countdown, paying and cancelling,
//! and once paid, the receipt.
//!
//! Paying and cancelling are form posts that always end in a `303` back to the order page,
//! with the outcome as a one-shot message ([`super::flash`]): a declined card leaves no
//! `/pay` address in the history to reopen. Cancelling asks first, on a page of its own
//! (`GET /orders/{id}/cancel`), so it needs no script either.
//!
//! Operators may read anyone's order (the API lets them): the page then shows it without the
//! buyer's controls, and with a link to refund it once paid ([`super::refunds`]).

use std::time::Duration;

use askama::Template;
use axum::{
    Extension, Form, Router,
    extract::{Query, State as Extract},
    http::StatusCode,
    response::Response,
    routing::get,
};
use serde::Deserialize;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use uuid::Uuid;

use super::{
    CardForm, Nav, PageId, SignedIn, State, failure_page,
    flash::{self, Done, Flash},
    layout::back_to,
    money, render,
    time::{Moment, Precision},
};
use crate::api::{Api, ApiFailure, Order, Payment, Visitor};

pub fn router() -> Router<State> {
    Router::new()
        .route("/orders", get(list))
        .route("/orders/{id}", get(show))
        .route("/orders/{id}/pay", get(back_to_order).post(pay))
        .route("/orders/{id}/cancel", get(confirm_cancel).post(cancel))
}

/// The countdown's warning starts this many seconds before the hold ends.
pub const WARN_SECONDS: i64 = 60;

/// An order as the pages show it, with its time left computed from the server's clock.
pub struct OrderView {
    pub id: Uuid,
    pub ticket_id: Uuid,
    /// For a seat of an event: the event, and the seat's label.
    pub event_id: Option<Uuid>,
    pub seat: Option<String>,
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
    /// When it expires (`None` if the API's time could not be read).
    pub expires_at: Option<Moment>,
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
            event_id: order.ticket.event_id,
            seat: order.ticket.seat,
            price: money(order.ticket.price),
            title: order.ticket.title,
            live: open && !past,
            complete,
            expired,
            cancelled: cancelled && !expired,
            refunded,
            status_label,
            remaining_seconds,
            expires_at: expires.map(|e| Moment::of(e, Precision::Time)),
        }
    }

    /// The page of what was ordered: the event for a seat, otherwise the ticket.
    pub fn item_href(&self) -> String {
        match self.event_id {
            Some(event) => format!("/events/{event}"),
            None => format!("/tickets/{}", self.ticket_id),
        }
    }

    /// `seat` or `ticket`, for the sentences that say what goes back on sale.
    pub fn item(&self) -> &'static str {
        if self.seat.is_some() {
            "seat"
        } else {
            "ticket"
        }
    }

    /// When the countdown's script starts warning.
    pub fn warn_seconds(&self) -> i64 {
        WARN_SECONDS
    }

    /// Live, with at most [`WARN_SECONDS`] left: the page warns (the script takes over
    /// from there as the seconds pass).
    pub fn ending(&self) -> bool {
        self.live && self.remaining_seconds <= WARN_SECONDS
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
    /// A paid (or refunded) order's receipt.
    receipt: Option<Receipt>,
}

/// What a paid order's page shows as its receipt. Without the payments (the call failed, or
/// the charge is not recorded yet), it still shows the order's number, ticket and price, and
/// says what is missing.
pub(super) struct Receipt {
    /// The amount the payment took, or the order's price without one.
    amount: String,
    paid_at: Option<Moment>,
    /// `Visa ending in 4242`, when the provider said.
    card: Option<String>,
    /// Why the payment's details are not shown.
    missing: Option<String>,
}

impl Receipt {
    /// The receipt of `order` from its payments, or from the order alone when they could
    /// not be read.
    fn of(order: &OrderView, payments: Result<Vec<Payment>, ApiFailure>) -> Receipt {
        let wanted = if order.refunded {
            ["refunded", "succeeded"]
        } else {
            ["succeeded", "refunded"]
        };
        let payments = match payments {
            Ok(payments) => payments,
            Err(failure) => {
                tracing::warn!(order_id = %order.id, error = %failure.sentence(), "the receipt's payments could not be read");
                return Receipt {
                    amount: order.price.clone(),
                    paid_at: None,
                    card: None,
                    missing: Some(format!(
                        "The payment's details (when, which card) cannot be shown right now: {} Reload the page in a moment.",
                        failure.sentence()
                    )),
                };
            }
        };
        // The latest payment in the state the order is in.
        let payment = wanted.iter().find_map(|status| {
            payments
                .iter()
                .filter(|p| p.status == *status)
                .max_by(|a, b| a.created_at.cmp(&b.created_at))
        });
        match payment {
            Some(payment) => Receipt {
                amount: money(payment.amount),
                paid_at: Moment::parse(&payment.created_at, Precision::DateTime),
                card: card(payment.card_brand.as_deref(), payment.card_last4.as_deref()),
                missing: None,
            },
            None => Receipt {
                amount: order.price.clone(),
                paid_at: None,
                card: None,
                missing: Some(
                    "The payment's details are not recorded yet. Reload the page in a moment."
                        .into(),
                ),
            },
        }
    }
}

/// `Visa ending in 4242`, `Visa`, `Card ending in 4242`, or nothing.
fn card(brand: Option<&str>, last4: Option<&str>) -> Option<String> {
    let brand = brand.map(|b| match b.to_ascii_lowercase().as_str() {
        "amex" | "american_express" => "American Express".to_owned(),
        "mastercard" => "Mastercard".to_owned(),
        "diners" => "Diners Club".to_owned(),
        "jcb" => "JCB".to_owned(),
        "unionpay" => "UnionPay".to_owned(),
        other => {
            let mut chars = other.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        }
    });
    match (brand.filter(|b| !b.is_empty()), last4) {
        (Some(brand), Some(last4)) => Some(format!("{brand} ending in {last4}")),
        (Some(brand), None) => Some(brand),
        (None, Some(last4)) => Some(format!("Card ending in {last4}")),
        (None, None) => None,
    }
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
            receipt: None,
        }
    }

    /// Adds the receipt of a paid or refunded order, from its payments.
    pub(super) async fn with_receipt(mut self, api: &Api, visitor: &Visitor) -> Self {
        if self.order.complete || self.order.refunded {
            let payments = api.payments(visitor, self.order.id).await;
            self.receipt = Some(Receipt::of(&self.order, payments));
        }
        self
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
    PageId(id): PageId,
    Query(shown): Query<Shown>,
) -> Response {
    let here = format!("/orders/{id}");
    match api.order(&viewer.visitor, id).await {
        Ok(order) => {
            let mut page = OrderPage::new(&viewer, order, &card_form)
                .with_receipt(&api, &viewer.visitor)
                .await;
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
pub struct PayForm {
    #[serde(default)]
    card: String,
    /// A provider token typed by hand; wins over the test-card choice when filled in.
    #[serde(default)]
    token: String,
}

/// How long paying waits for the order to turn `complete` before showing "confirming".
const CONFIRM_WAIT: Duration = Duration::from_secs(5);

/// A reopened `/pay` or `/cancel` address: the order's page.
async fn back_to_order(PageId(id): PageId) -> Response {
    back_to(&format!("/orders/{id}"))
}

#[tracing::instrument(skip_all, fields(order_id = %id))]
async fn pay(
    Extract(api): Extract<State>,
    viewer: SignedIn,
    PageId(id): PageId,
    Form(payment): Form<PayForm>,
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
            let to = if wait_for_status(&api, visitor, id, "complete").await {
                here
            } else {
                format!("{here}?paid=1")
            };
            flash::redirect(&to, Flash::Done(Done::Paid))
        }
        Err(failure)
            if failure.is(StatusCode::UNAUTHORIZED) || failure.is(StatusCode::NOT_FOUND) =>
        {
            failure_page(&failure, &here, true)
        }
        // Declined, refused (cancelled, already paid, expired, too many attempts) or not
        // answered: back to the order, which shows what it is now, with the reason on top.
        Err(failure) => {
            let message = if failure.is(StatusCode::PAYMENT_REQUIRED) {
                format!("{} Try another card.", failure.sentence())
            } else {
                failure.sentence()
            };
            flash::redirect(&here, Flash::Refused(message))
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

#[derive(Template)]
#[template(path = "cancel.html")]
struct CancelPage {
    nav: Nav,
    order: OrderView,
}

/// "Cancel this order?", for the buyer's live order; any other order has nothing to cancel,
/// and its own page says what became of it.
async fn confirm_cancel(
    Extract(api): Extract<State>,
    viewer: SignedIn,
    PageId(id): PageId,
) -> Response {
    let here = format!("/orders/{id}");
    match api.order(&viewer.visitor, id).await {
        Ok(order) if order.user_id == viewer.me.id => {
            let order = OrderView::of(order, OffsetDateTime::now_utc());
            if !order.live {
                return back_to(&here);
            }
            render(
                StatusCode::OK,
                &CancelPage {
                    nav: viewer.nav,
                    order,
                },
            )
        }
        // An operator reading someone's order: cancelling is the buyer's.
        Ok(_) => back_to(&here),
        Err(failure) => failure_page(&failure, &format!("{here}/cancel"), true),
    }
}

#[tracing::instrument(skip_all, fields(order_id = %id))]
async fn cancel(Extract(api): Extract<State>, viewer: SignedIn, PageId(id): PageId) -> Response {
    let here = format!("/orders/{id}");
    match api.cancel_order(&viewer.visitor, id).await {
        Ok(()) => flash::redirect(&here, Flash::Done(Done::Cancelled)),
        Err(failure) if failure.is(StatusCode::CONFLICT) => {
            flash::redirect(&here, Flash::Refused(failure.sentence()))
        }
        Err(failure) => failure_page(&failure, &here, true),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::api::{FieldError, OrderTicket};

    fn order(status: &str) -> OrderView {
        OrderView::of(
            Order {
                id: Uuid::from_u128(1),
                user_id: Uuid::from_u128(2),
                status: status.into(),
                expires_at: "2026-03-01T12:15:00Z".into(),
                ticket: OrderTicket {
                    id: Uuid::from_u128(3),
                    title: "Rust Conf".into(),
                    price: 25.5,
                    event_id: None,
                    seat: None,
                },
            },
            datetime!(2026-03-01 12:00 UTC),
        )
    }

    fn payment(status: &str, at: &str, brand: Option<&str>, last4: Option<&str>) -> Payment {
        Payment {
            id: Uuid::now_v7(),
            order_id: Uuid::from_u128(1),
            amount: 25.5,
            status: status.into(),
            created_at: at.into(),
            card_brand: brand.map(str::to_owned),
            card_last4: last4.map(str::to_owned),
        }
    }

    #[test]
    fn a_receipt_names_the_successful_payment_its_time_and_card() {
        let payments = vec![
            payment("declined", "2026-03-01T12:01:00Z", None, None),
            payment(
                "succeeded",
                "2026-03-01T12:02:30Z",
                Some("visa"),
                Some("4242"),
            ),
        ];
        let receipt = Receipt::of(&order("complete"), Ok(payments));
        assert_eq!(receipt.amount, "$25.50");
        assert_eq!(receipt.card.as_deref(), Some("Visa ending in 4242"));
        assert_eq!(
            receipt.paid_at.map(|m| m.utc),
            Some("2026-03-01 12:02 UTC".to_owned())
        );
        assert_eq!(receipt.missing, None);
    }

    #[test]
    fn without_its_payments_a_receipt_shows_the_order_and_says_what_is_missing() {
        let failure = ApiFailure {
            status: Some(StatusCode::INTERNAL_SERVER_ERROR),
            errors: vec![FieldError {
                message: "Something went wrong.".into(),
                field: None,
            }],
        };
        let receipt = Receipt::of(&order("complete"), Err(failure));
        assert_eq!(receipt.amount, "$25.50");
        assert_eq!((receipt.paid_at, receipt.card), (None, None));
        assert!(
            receipt
                .missing
                .is_some_and(|m| m.contains("cannot be shown right now")),
        );
        let pending = vec![payment("pending", "2026-03-01T12:01:00Z", None, None)];
        let receipt = Receipt::of(&order("complete"), Ok(pending));
        assert!(
            receipt
                .missing
                .is_some_and(|m| m.contains("not recorded yet"))
        );
    }

    #[test]
    fn cards_read_as_people_name_them() {
        assert_eq!(
            card(Some("visa"), Some("4242")).unwrap(),
            "Visa ending in 4242"
        );
        assert_eq!(card(Some("amex"), None).unwrap(), "American Express");
        assert_eq!(card(None, Some("0005")).unwrap(), "Card ending in 0005");
        assert_eq!(card(None, None), None);
        assert_eq!(card(Some(""), None), None);
    }

    #[test]
    fn the_countdown_warns_in_the_last_minute_only() {
        let mut view = order("created");
        view.remaining_seconds = 61;
        assert!(!view.ending());
        view.remaining_seconds = 60;
        assert!(view.ending());
        view.live = false;
        assert!(!view.ending());
    }
}
