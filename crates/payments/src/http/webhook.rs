//! Stripe's webhook. Authenticated by `Stripe-Signature` alone (no session): the signature is
//! checked on the raw bytes before anything reads them.

use axum::{
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::HeaderMap,
};
use serde::Serialize;
use ticketing_common::{ApiError, Json, error::ErrorBody};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::{
    app::Payments,
    domain::webhook::{parse_event, verify_signature},
    flows,
};

/// The acknowledgement Stripe expects: `{"received": true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct WebhookReceived {
    pub received: bool,
}

/// Receives a Stripe event. `payment_intent.succeeded` completes the order's payment (once,
/// however often it is delivered); `payment_intent.payment_failed` declines a processing
/// payment; other events are acknowledged. Without a configured webhook secret every event
/// is refused with 400, as no signature can be valid.
#[utoipa::path(post, path = "/api/payments/webhook", tag = "payments",
    params(("Stripe-Signature" = String, Header,
        description = "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"t.body\">")),
    request_body(content = String, content_type = "application/json",
        description = "A Stripe event, exactly as Stripe signed it"),
    responses(
        (status = 200, description = "Accepted (applied, replayed, or ignored)", body = WebhookReceived),
        (status = 400, description = "Missing, malformed, wrong or expired signature; or not an event", body = ErrorBody),
    ))]
pub async fn stripe_webhook(
    State(app): State<Payments>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<WebhookReceived>, ApiError> {
    let body = body.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    let Some(secret) = &app.webhook_secret else {
        tracing::warn!("Stripe webhook refused: STRIPE_WEBHOOK_SECRET is not configured");
        return Err(ApiError::BadRequest(
            "Webhook signatures cannot be verified: no webhook secret is configured".into(),
        ));
    };
    let header = headers
        .get("stripe-signature")
        .map(|value| value.to_str().unwrap_or_default());
    let now = OffsetDateTime::now_utc().unix_timestamp();
    if let Err(refused) = verify_signature(secret.expose().as_bytes(), header, &body, now) {
        tracing::warn!(reason = %refused, "Stripe webhook refused");
        return Err(ApiError::BadRequest(refused.to_string()));
    }
    let event = parse_event(&body).map_err(|reason| {
        tracing::warn!(%reason, "signed webhook that is not an event we can read");
        ApiError::BadRequest("Not a Stripe event".into())
    })?;
    flows::handle_stripe_event(&app, &event).await?;
    Ok(Json(WebhookReceived { received: true }))
}
