//! Payments' HTTP API, as `CONTRACT.md` (Payments) describes it:
//! - [`payments`]: `POST /api/payments`, for a signed-in buyer;
//! - [`webhook`]: `POST /api/payments/webhook`, for Stripe, authenticated by its signature.

mod payments;
mod webhook;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::Payments;

pub use payments::{PaymentInput, PaymentReceipt};
pub use webhook::WebhookReceived;

pub fn router(app: Payments) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(payments::create_payment))
        .routes(routes!(webhook::stripe_webhook))
        .with_state(app)
}
