//! Payments' HTTP API, as `CONTRACT.md` (Payments) describes it:
//! - [`payments`]: `POST /api/payments`, for a signed-in buyer, and `GET /api/payments`
//!   (an order's payments, for its owner or an operator);
//! - [`refunds`]: `POST /api/payments/refunds`, for operators;
//! - [`webhook`]: `POST /api/payments/webhook`, for Stripe, authenticated by its signature;
//! - [`admin`]: `GET /api/payments/admin/attention`, for operators.

mod admin;
mod payments;
mod refunds;
mod webhook;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::Payments;

pub use payments::{PaymentInput, PaymentReceipt, PaymentView};
pub use refunds::{RefundInput, RefundView};
pub use webhook::WebhookReceived;

pub fn router(app: Payments) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(payments::create_payment, payments::list_payments))
        .routes(routes!(refunds::refund_order))
        .routes(routes!(webhook::stripe_webhook))
        .routes(routes!(admin::attention))
        .with_state(app)
}
