//! `/orders/{id}/refund`: an operator gives a buyer their money back.
//!
//! A refund cannot be undone, so the order page only links here: a confirmation page whose
//! form (a plain post, guarded like every form by [`crate::csrf`]; no script needed) asks
//! payments for the refund and returns to the order. Who may refund, and what, is the API's
//! decision: its refusals are put in words on the order page.

use askama::Template;
use axum::{
    Extension, Router,
    extract::State as Extract,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use time::OffsetDateTime;

use super::{
    CardForm, Nav, PageId, SignedIn, State, failure_page, message_page,
    orders::{OrderPage, OrderView, wait_for_status},
    render,
};
use crate::api::ApiFailure;

pub fn router() -> Router<State> {
    Router::new().route("/orders/{id}/refund", get(confirm).post(refund))
}

#[derive(Template)]
#[template(path = "refund.html")]
struct ConfirmPage {
    nav: Nav,
    order: OrderView,
}

/// "Refund $25.99 to the buyer?", for a paid order; any other order has nothing to refund,
/// and its own page says what became of it.
async fn confirm(Extract(api): Extract<State>, viewer: SignedIn, PageId(id): PageId) -> Response {
    if !viewer.operator {
        return operators_only(None);
    }
    match api.order(&viewer.visitor, id).await {
        Ok(order) if order.status == "complete" => {
            let order = OrderView::of(order, OffsetDateTime::now_utc());
            render(
                StatusCode::OK,
                &ConfirmPage {
                    nav: viewer.nav,
                    order,
                },
            )
        }
        Ok(_) => Redirect::to(&format!("/orders/{id}")).into_response(),
        Err(failure) => failure_page(&failure, &format!("/orders/{id}/refund"), true),
    }
}

#[tracing::instrument(skip_all, fields(order_id = %id))]
async fn refund(
    Extract(api): Extract<State>,
    Extension(card_form): Extension<CardForm>,
    viewer: SignedIn,
    PageId(id): PageId,
) -> Response {
    let here = format!("/orders/{id}");
    let visitor = &viewer.visitor;

    match api.refund(visitor, id).await {
        Ok(refund) => {
            tracing::info!(refund_id = %refund.id, amount = refund.amount, "refunded");
            // The order page says "under way" until the order turns `refunded`.
            wait_for_status(&api, visitor, id, "refunded").await;
            Redirect::to(&format!("{here}?refunded=1")).into_response()
        }
        Err(failure) if failure.is(StatusCode::FORBIDDEN) => operators_only(Some(&failure)),
        // Signed in here but not to the API: the session ended meanwhile.
        Err(failure) if failure.is(StatusCode::UNAUTHORIZED) => {
            failure_page(&failure, &here, false)
        }
        Err(failure)
            if failure.is(StatusCode::CONFLICT) || failure.is(StatusCode::SERVICE_UNAVAILABLE) =>
        {
            match api.order(visitor, id).await {
                Ok(order) => {
                    let mut page = OrderPage::new(&viewer, order, &card_form)
                        .with_receipt(&api, visitor)
                        .await;
                    page.error = Some(failure.sentence());
                    // A provider that did not answer refunded nothing and may be asked
                    // again: the page is the order as it is, with the API's word on it.
                    let status = if failure.is(StatusCode::CONFLICT) {
                        StatusCode::CONFLICT
                    } else {
                        StatusCode::OK
                    };
                    render(status, &page)
                }
                Err(other) => failure_page(&other, &here, true),
            }
        }
        Err(failure) => failure_page(&failure, &here, true),
    }
}

/// The refusal a visitor who is not an operator gets, in the API's words when it gave some.
fn operators_only(failure: Option<&ApiFailure>) -> Response {
    let why = failure.map_or_else(String::new, |f| format!(" ({})", f.sentence()));
    message_page(
        StatusCode::FORBIDDEN,
        "Operators only",
        &format!("Only operators can refund an order.{why}"),
    )
}
