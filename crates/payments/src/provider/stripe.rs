//! A thin Stripe client: one call, `POST /v1/payment_intents` with `confirm=true`.
//!
//! No SDK: the one request is a form post, and its answers are read into the three outcomes
//! the flows act on. The order id travels as the idempotency key (Stripe keeps the first
//! answer per key for 24 hours and replays it to any retry) and as `metadata[order_id]`
//! (which webhooks carry back). The API version is pinned so a change in the account's
//! default version cannot change the shapes read here.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;
use ticketing_common::Secret;

use super::{Charge, ChargeError, ChargeRequest, ChargeStatus, PaymentProvider};

/// The Stripe API version every request asks for.
pub const API_VERSION: &str = "2024-06-20";

/// How long one charge may take, connection included. A charge that times out is reported
/// [`ChargeError::Unavailable`]: it may have happened, and the retry with the same key finds
/// out.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Talks to Stripe (or to whatever serves its API at the base URL).
#[derive(Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    /// Without the trailing slash: `https://api.stripe.com`.
    base: String,
    key: Secret<String>,
    /// A live key (`sk_live_…`, `rk_live_…`): real money.
    live: bool,
}

impl std::fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl StripeClient {
    /// A client with the default timeout.
    pub fn new(secret_key: Secret<String>, api_base: &str) -> anyhow::Result<Self> {
        StripeClient::with_timeout(secret_key, api_base, DEFAULT_TIMEOUT)
    }

    /// A client whose calls give up after `timeout`.
    pub fn with_timeout(
        secret_key: Secret<String>,
        api_base: &str,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let base = api_base.trim().trim_end_matches('/').to_owned();
        let url = reqwest::Url::parse(&base)
            .map_err(|e| anyhow::anyhow!("invalid STRIPE_API_BASE {base:?}: {e}"))?;
        anyhow::ensure!(
            matches!(url.scheme(), "https" | "http"),
            "STRIPE_API_BASE must be an http(s) URL, not {base:?}"
        );
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("ticketing-payments/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let live = secret_key.expose().contains("_live_");
        Ok(StripeClient {
            http,
            base,
            key: secret_key,
            live,
        })
    }

    /// The form of a confirmed PaymentIntent for a charge. A `tok_...` card token (the
    /// Charges-era kind, and Stripe's test tokens) goes in as card data; anything else is a
    /// PaymentMethod id. Automatic payment methods without redirects, and an error instead of
    /// `requires_action`, because this server-side confirmation has no buyer to send through
    /// 3-D Secure: such a card is declined with Stripe's message instead of hanging.
    fn form(request: &ChargeRequest) -> Vec<(&'static str, String)> {
        let mut form = vec![
            ("amount", request.amount_cents.to_string()),
            ("currency", request.currency.clone()),
            ("confirm", "true".into()),
            ("metadata[order_id]", request.order_id.to_string()),
            ("automatic_payment_methods[enabled]", "true".into()),
            ("automatic_payment_methods[allow_redirects]", "never".into()),
            ("error_on_requires_action", "true".into()),
        ];
        if request.token.starts_with("tok_") {
            form.push(("payment_method_data[type]", "card".into()));
            form.push(("payment_method_data[card][token]", request.token.clone()));
        } else {
            form.push(("payment_method", request.token.clone()));
        }
        form
    }
}

impl PaymentProvider for StripeClient {
    fn name(&self) -> &'static str {
        "stripe"
    }

    fn livemode(&self) -> bool {
        self.live
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.order_id, idempotency_key = %request.idempotency_key))]
    async fn charge(&self, request: &ChargeRequest) -> Result<Charge, ChargeError> {
        let sent = self
            .http
            .post(format!("{}/v1/payment_intents", self.base))
            .bearer_auth(self.key.expose())
            .header("Idempotency-Key", &request.idempotency_key)
            .header("Stripe-Version", API_VERSION)
            .form(&StripeClient::form(request))
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                let reason = format!("Stripe did not answer: {}", describe(error));
                tracing::warn!(%reason, "Stripe did not answer");
                return Err(ChargeError::Unavailable(reason));
            }
        };
        let status = response.status();
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(error) => {
                let reason = format!("Stripe's answer was cut off: {}", describe(error));
                tracing::warn!(%reason, %status, "Stripe's answer was cut off");
                return Err(ChargeError::Unavailable(reason));
            }
        };
        let outcome = classify(status, &body);
        match &outcome {
            Ok(charge) => {
                tracing::info!(intent = %charge.id, status = ?charge.status, replayed, "Stripe charge")
            }
            Err(ChargeError::Unavailable(reason)) if status.is_server_error() => {
                tracing::warn!(%status, %reason, "Stripe is failing")
            }
            Err(ChargeError::Unavailable(reason)) => {
                // 401/403, 400 idempotency errors, unknown shapes: our side is wrong.
                tracing::error!(%status, %reason, "Stripe refused our request")
            }
            Err(refused) => {
                tracing::info!(%status, replayed, %refused, "Stripe refused the charge")
            }
        }
        outcome
    }
}

/// A transport error with its causes ("timed out", "connection refused"), without the URL.
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if error.is_timeout() && !text.contains("timed out") {
        text.push_str(" (timed out)");
    }
    text
}

#[derive(Deserialize)]
struct Intent {
    id: String,
    status: String,
    last_payment_error: Option<StripeError>,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: StripeError,
}

#[derive(Debug, Default, Deserialize)]
struct StripeError {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
    message: Option<String>,
    param: Option<String>,
}

/// Reads Stripe's answer to a confirmed PaymentIntent.
///
/// - 2xx `succeeded` → charged; `processing` → accepted, the webhook settles it; any other
///   status (`requires_payment_method`, `requires_action`, `canceled`, ...) means the payment
///   did not go through → declined with Stripe's `last_payment_error` message;
/// - `card_error` (402) → declined with Stripe's message;
/// - `invalid_request_error` about the payment method (unknown, used, unusable) → invalid
///   token; about the amount (below Stripe's minimum charge, above its maximum) → declined,
///   since no retry can change it;
/// - everything else (5xx, 429, 409 "key in use", 401/403, idempotency errors, unreadable
///   bodies) → unavailable: nothing is known, nothing may be marked.
fn classify(status: StatusCode, body: &[u8]) -> Result<Charge, ChargeError> {
    if status.is_success() {
        let Ok(intent) = serde_json::from_slice::<Intent>(body) else {
            return Err(ChargeError::Unavailable(format!(
                "Stripe answered {status} with a body that is not a PaymentIntent"
            )));
        };
        return match intent.status.as_str() {
            "succeeded" => Ok(Charge {
                id: intent.id,
                status: ChargeStatus::Succeeded,
            }),
            "processing" => Ok(Charge {
                id: intent.id,
                status: ChargeStatus::Processing,
            }),
            other => Err(ChargeError::Declined(
                intent
                    .last_payment_error
                    .and_then(|e| e.message)
                    .unwrap_or_else(|| {
                        format!("The payment could not be completed (Stripe status {other}).")
                    }),
            )),
        };
    }
    let error = serde_json::from_slice::<ErrorEnvelope>(body)
        .map(|envelope| envelope.error)
        .unwrap_or_default();
    let message = error
        .message
        .clone()
        .unwrap_or_else(|| format!("Stripe answered {status}"));
    let kind = error.kind.as_deref().unwrap_or_default();
    let code = error.code.as_deref().unwrap_or_default();
    let about_payment_method = error
        .param
        .as_deref()
        .is_some_and(|p| p.starts_with("payment_method"))
        || code == "resource_missing"
        || code.starts_with("payment_method")
        || code == "token_already_used";
    // Stripe's minimum and maximum charge (50 cents in USD): a definitive refusal of this
    // amount that no retry can change, so it is answered like a decline, with Stripe's words.
    let amount_refused =
        code.starts_with("amount_too_") || error.param.as_deref() == Some("amount");
    match status {
        _ if kind == "card_error" => Err(ChargeError::Declined(message)),
        StatusCode::BAD_REQUEST if kind == "invalid_request_error" && amount_refused => {
            Err(ChargeError::Declined(message))
        }
        StatusCode::PAYMENT_REQUIRED => Err(ChargeError::Declined(message)),
        StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND
            if kind == "invalid_request_error" && about_payment_method =>
        {
            Err(ChargeError::InvalidToken(message))
        }
        _ => Err(ChargeError::Unavailable(format!(
            "Stripe answered {status}: {message}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn classify_json(status: u16, body: serde_json::Value) -> Result<Charge, ChargeError> {
        classify(
            StatusCode::from_u16(status).unwrap(),
            body.to_string().as_bytes(),
        )
    }

    #[test]
    fn a_succeeded_intent_is_a_charge_and_a_processing_one_is_pending() {
        assert_eq!(
            classify_json(200, json!({"id": "pi_1", "status": "succeeded"})),
            Ok(Charge {
                id: "pi_1".into(),
                status: ChargeStatus::Succeeded
            })
        );
        assert_eq!(
            classify_json(200, json!({"id": "pi_2", "status": "processing"})),
            Ok(Charge {
                id: "pi_2".into(),
                status: ChargeStatus::Processing
            })
        );
    }

    #[test]
    fn an_intent_that_did_not_go_through_is_declined_with_stripes_message() {
        assert_eq!(
            classify_json(
                200,
                json!({"id": "pi_1", "status": "requires_payment_method",
                    "last_payment_error": {"type": "card_error", "message": "Insufficient funds."}})
            ),
            Err(ChargeError::Declined("Insufficient funds.".into()))
        );
        assert!(matches!(
            classify_json(200, json!({"id": "pi_1", "status": "requires_action"})),
            Err(ChargeError::Declined(m)) if m.contains("requires_action")
        ));
    }

    #[test]
    fn card_errors_are_declines_with_stripes_message() {
        let body = json!({"error": {"type": "card_error", "code": "card_declined",
            "decline_code": "generic_decline", "message": "Your card was declined."}});
        assert_eq!(
            classify_json(402, body),
            Err(ChargeError::Declined("Your card was declined.".into()))
        );
    }

    #[test]
    fn unusable_payment_methods_are_invalid_tokens() {
        let missing = json!({"error": {"type": "invalid_request_error", "code": "resource_missing",
            "param": "payment_method", "message": "No such PaymentMethod: 'pm_x'"}});
        assert_eq!(
            classify_json(400, missing),
            Err(ChargeError::InvalidToken(
                "No such PaymentMethod: 'pm_x'".into()
            ))
        );
        let token = json!({"error": {"type": "invalid_request_error",
            "param": "payment_method_data[card][token]", "message": "No such token: 'tok_x'"}});
        assert!(matches!(
            classify_json(400, token),
            Err(ChargeError::InvalidToken(_))
        ));
    }

    #[test]
    fn an_amount_stripe_cannot_charge_is_declined_with_stripes_message() {
        let body = json!({"error": {"type": "invalid_request_error", "code": "amount_too_small",
            "param": "amount", "message": "Amount must be at least $0.50 usd"}});
        assert_eq!(
            classify_json(400, body),
            Err(ChargeError::Declined(
                "Amount must be at least $0.50 usd".into()
            ))
        );
    }

    #[test]
    fn everything_else_is_unavailable() {
        for (status, body) in [
            (
                500,
                json!({"error": {"type": "api_error", "message": "boom"}}),
            ),
            (503, json!("not an error body")),
            (
                429,
                json!({"error": {"type": "invalid_request_error", "code": "rate_limit"}}),
            ),
            (
                409,
                json!({"error": {"type": "idempotency_error", "message": "in use"}}),
            ),
            (
                400,
                json!({"error": {"type": "idempotency_error", "message": "other params"}}),
            ),
            (
                401,
                json!({"error": {"type": "invalid_request_error", "message": "bad key"}}),
            ),
            (
                400,
                json!({"error": {"type": "invalid_request_error", "param": "currency"}}),
            ),
            (200, json!({"unexpected": true})),
        ] {
            assert!(
                matches!(
                    classify_json(status, body.clone()),
                    Err(ChargeError::Unavailable(_))
                ),
                "{status} {body}"
            );
        }
    }

    #[test]
    fn the_form_carries_integer_cents_the_order_and_the_token() {
        let order_id = uuid::Uuid::from_u128(7);
        let request = ChargeRequest {
            idempotency_key: order_id.to_string(),
            order_id,
            amount_cents: 1999,
            currency: "usd".into(),
            token: "pm_card_visa".into(),
        };
        let form = StripeClient::form(&request);
        assert!(form.contains(&("amount", "1999".into())));
        assert!(form.contains(&("payment_method", "pm_card_visa".into())));
        assert!(form.contains(&("metadata[order_id]", order_id.to_string())));
        let form = StripeClient::form(&ChargeRequest {
            token: "tok_visa".into(),
            ..request
        });
        assert!(form.contains(&("payment_method_data[card][token]", "tok_visa".into())));
        assert!(!form.iter().any(|(k, _)| *k == "payment_method"));
    }

    #[test]
    fn the_debug_form_never_shows_the_key() {
        let client = StripeClient::new(
            Secret::new("sk_test_secret".into()),
            "https://api.stripe.com/",
        )
        .unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains("sk_test"), "{shown}");
        assert!(shown.contains("https://api.stripe.com\""), "{shown}");
        assert!(StripeClient::new(Secret::new("k".into()), "ftp://x").is_err());
        assert!(StripeClient::new(Secret::new("k".into()), "not a url").is_err());
    }
}
