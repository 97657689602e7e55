//! A thin Stripe client: three calls. `POST /v1/payment_intents` with `confirm=true`
//! charges; `GET /v1/payment_intents/search` finds the intent of an attempt whose answer was
//! lost; `POST /v1/refunds` gives a charge back.
//!
//! No SDK: each request is a form post or a query, and its answers are read into the
//! outcomes the flows act on. The order id travels as the idempotency key (Stripe keeps the first
//! answer per key for 24 hours and replays it to any retry) and as `metadata[order_id]`
//! (which webhooks carry back). The API version is pinned so a change in the account's
//! default version cannot change the shapes read here.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;
use ticketing_common::Secret;

use super::{
    Card, Charge, ChargeError, ChargeRequest, ChargeStatus, Found, PaymentProvider, Refund,
    RefundError, RefundRequest,
};

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
            // What `find` searches by when this request's answer is lost.
            ("metadata[idempotency_key]", request.idempotency_key.clone()),
            // The charge, with the card's brand and last four digits for the receipt.
            ("expand[]", "latest_charge".into()),
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
            .post("/v1/payment_intents", &request.idempotency_key)
            .form(&StripeClient::form(request));
        let (status, replayed, body) = read(sent).await.map_err(ChargeError::Unavailable)?;
        let outcome = classify(status, &body);
        match &outcome {
            Ok(charge) => {
                tracing::info!(intent = %charge.id, status = ?charge.status, replayed, "Stripe charge")
            }
            Err(ChargeError::Unavailable(reason)) if status.is_server_error() => {
                tracing::warn!(%status, %reason, "Stripe is failing")
            }
            Err(ChargeError::Unavailable(reason) | ChargeError::Refused(reason)) => {
                // 401/403, 400 idempotency errors, unknown shapes: our side is wrong.
                tracing::error!(%status, %reason, "Stripe refused our request")
            }
            Err(refused) => {
                tracing::info!(%status, replayed, %refused, "Stripe refused the charge")
            }
        }
        outcome
    }

    /// Searches the intents by the attempt's `metadata[idempotency_key]`. Stripe's search
    /// may lag a new intent by up to a minute, so "nothing" only means "not known yet": the
    /// caller then sends the attempt again under the same key, which Stripe answers from its
    /// first execution if there was one.
    #[tracing::instrument(skip_all, fields(order_id = %request.order_id, idempotency_key = %request.idempotency_key))]
    async fn find(&self, request: &ChargeRequest) -> Result<Found, String> {
        let query = format!(
            "metadata['idempotency_key']:'{}'",
            request.idempotency_key.replace('\'', "\\'")
        );
        let url = reqwest::Url::parse_with_params(
            &format!("{}/v1/payment_intents/search", self.base),
            [
                ("query", query.as_str()),
                ("expand[]", "data.latest_charge"),
            ],
        )
        .map_err(|e| format!("cannot build the search URL: {e}"))?;
        let sent = self
            .http
            .get(url)
            .bearer_auth(self.key.expose())
            .header("Stripe-Version", API_VERSION);
        let (status, _, body) = read(sent).await?;
        if !status.is_success() {
            return Err(format!("Stripe answered {status} to a search"));
        }
        let found: SearchResult = serde_json::from_slice(&body)
            .map_err(|e| format!("Stripe's search answer is not a list of intents: {e}"))?;
        let mut intents = found.data.into_iter();
        let Some(intent) = intents.next() else {
            return Ok(Found::Nothing);
        };
        if intents.next().is_some() {
            return Err("Stripe has several intents for one idempotency key".into());
        }
        tracing::info!(intent = %intent.id, status = %intent.status, "found the attempt's intent at Stripe");
        Ok(Found::Outcome(read_intent(intent)))
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.order_id, charge = %request.charge_id))]
    async fn refund(&self, request: &RefundRequest) -> Result<Refund, RefundError> {
        let sent = self.post("/v1/refunds", &request.idempotency_key).form(&[
            ("payment_intent", request.charge_id.clone()),
            ("amount", request.amount_cents.to_string()),
            ("metadata[order_id]", request.order_id.to_string()),
        ]);
        let (status, _, body) = read(sent).await.map_err(RefundError::Unavailable)?;
        let outcome = classify_refund(status, &body);
        match &outcome {
            Ok(refund) => tracing::info!(refund = %refund.id, "Stripe refund"),
            Err(error) => tracing::warn!(%status, %error, "Stripe did not refund"),
        }
        outcome
    }
}

impl StripeClient {
    /// A POST to `path` under an idempotency key, authenticated and versioned.
    fn post(&self, path: &str, idempotency_key: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(self.key.expose())
            .header("Idempotency-Key", idempotency_key)
            .header("Stripe-Version", API_VERSION)
    }
}

/// Sends a request and reads its whole answer: the status, whether Stripe replayed it from
/// the idempotency key, and the body. `Err` (with the reason) when no answer arrived whole.
async fn read(
    request: reqwest::RequestBuilder,
) -> Result<(StatusCode, bool, bytes::Bytes), String> {
    let response = request.send().await.map_err(|error| {
        let reason = format!("Stripe did not answer: {}", describe(error));
        tracing::warn!(%reason, "Stripe did not answer");
        reason
    })?;
    let status = response.status();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    let body = response.bytes().await.map_err(|error| {
        let reason = format!("Stripe's answer was cut off: {}", describe(error));
        tracing::warn!(%reason, %status, "Stripe's answer was cut off");
        reason
    })?;
    Ok((status, replayed, body))
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
    /// The charge, when expanded (`expand[]=latest_charge`); an id string otherwise.
    #[serde(default)]
    latest_charge: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct SearchResult {
    data: Vec<Intent>,
}

#[derive(Deserialize)]
struct StripeRefund {
    id: String,
    status: Option<String>,
    failure_reason: Option<String>,
}

/// The card of an expanded `latest_charge`: `payment_method_details.card.{brand,last4}`.
fn card_of(charge: Option<&serde_json::Value>) -> Option<Card> {
    let card = charge?.get("payment_method_details")?.get("card")?;
    Some(Card {
        brand: card.get("brand")?.as_str()?.to_owned(),
        last4: card.get("last4")?.as_str()?.to_owned(),
    })
}

/// What an intent says about its charge: succeeded or processing is a charge; any other
/// status (`requires_payment_method`, `requires_action`, `canceled`, ...) means the payment
/// did not go through, declined with Stripe's `last_payment_error` message.
fn read_intent(intent: Intent) -> Result<Charge, ChargeError> {
    let status = match intent.status.as_str() {
        "succeeded" => ChargeStatus::Succeeded,
        "processing" => ChargeStatus::Processing,
        other => {
            return Err(ChargeError::Declined(
                intent
                    .last_payment_error
                    .and_then(|e| e.message)
                    .unwrap_or_else(|| {
                        format!("The payment could not be completed (Stripe status {other}).")
                    }),
            ));
        }
    };
    Ok(Charge {
        card: card_of(intent.latest_charge.as_ref()),
        id: intent.id,
        status,
    })
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
/// - 2xx: the intent says (see [`read_intent`]);
/// - `card_error` (402) → declined with Stripe's message;
/// - 400 about the amount (below Stripe's minimum charge, above its maximum) → declined,
///   since no retry can change it;
/// - 401/403 (our key), and 400 naming a parameter of ours (currency, ...) → refused: Stripe
///   did nothing, and sending the same request again cannot help;
/// - any other 400 or 404 (about the payment method, or without a code at all) → invalid
///   token: Stripe refused this payment method and charged nothing; the buyer may try another;
/// - 5xx, 429, 409 (a request under the same key in flight), idempotency errors (the key's
///   first request may have charged) and unreadable bodies → unavailable: nothing is known,
///   nothing may be marked.
fn classify(status: StatusCode, body: &[u8]) -> Result<Charge, ChargeError> {
    if status.is_success() {
        return match serde_json::from_slice::<Intent>(body) {
            Ok(intent) => read_intent(intent),
            Err(_) => Err(ChargeError::Unavailable(format!(
                "Stripe answered {status} with a body that is not a PaymentIntent"
            ))),
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
    let param = error.param.as_deref().unwrap_or_default();
    let about_payment_method = param.starts_with("payment_method")
        || code == "resource_missing"
        || code.starts_with("payment_method")
        || code == "token_already_used";
    // Stripe's minimum and maximum charge (50 cents in USD): a definitive refusal of this
    // amount that no retry can change, so it is answered like a decline, with Stripe's words.
    let amount_refused = code.starts_with("amount_too_") || param == "amount";
    match status {
        _ if kind == "card_error" => Err(ChargeError::Declined(message)),
        StatusCode::PAYMENT_REQUIRED => Err(ChargeError::Declined(message)),
        _ if kind == "idempotency_error" => Err(ChargeError::Unavailable(format!(
            "Stripe answered {status}: {message}"
        ))),
        StatusCode::BAD_REQUEST if amount_refused => Err(ChargeError::Declined(message)),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(ChargeError::Refused(format!(
            "Stripe answered {status}: {message}"
        ))),
        StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND
            if !about_payment_method && !param.is_empty() =>
        {
            Err(ChargeError::Refused(format!(
                "Stripe answered {status} about {param}: {message}"
            )))
        }
        StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND => Err(ChargeError::InvalidToken(message)),
        _ => Err(ChargeError::Unavailable(format!(
            "Stripe answered {status}: {message}"
        ))),
    }
}

/// Reads Stripe's answer to a refund: a refund `succeeded` or `pending` (Stripe finishes it;
/// a `refund.updated` webhook tells if it fails) is made; `failed` or `canceled`, or a 4xx
/// (already refunded, disputed, our key), is refused with Stripe's words; 5xx, 429, 409 and
/// unreadable answers are unknown.
fn classify_refund(status: StatusCode, body: &[u8]) -> Result<Refund, RefundError> {
    if status.is_success() {
        let refund: StripeRefund = serde_json::from_slice(body).map_err(|_| {
            RefundError::Unavailable(format!(
                "Stripe answered {status} with a body that is not a refund"
            ))
        })?;
        return match refund.status.as_deref() {
            Some("failed" | "canceled") => Err(RefundError::Refused(format!(
                "Stripe could not refund: {}",
                refund
                    .failure_reason
                    .as_deref()
                    .unwrap_or("no reason given")
            ))),
            _ => Ok(Refund { id: refund.id }),
        };
    }
    let error = serde_json::from_slice::<ErrorEnvelope>(body)
        .map(|envelope| envelope.error)
        .unwrap_or_default();
    let message = error
        .message
        .unwrap_or_else(|| format!("Stripe answered {status}"));
    match status {
        StatusCode::TOO_MANY_REQUESTS | StatusCode::CONFLICT => {
            Err(RefundError::Unavailable(message))
        }
        _ if error.kind.as_deref() == Some("idempotency_error") => {
            Err(RefundError::Unavailable(message))
        }
        _ if status.is_client_error() => Err(RefundError::Refused(message)),
        _ => Err(RefundError::Unavailable(format!(
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
                status: ChargeStatus::Succeeded,
                card: None,
            })
        );
        assert_eq!(
            classify_json(200, json!({"id": "pi_2", "status": "processing"})),
            Ok(Charge {
                id: "pi_2".into(),
                status: ChargeStatus::Processing,
                card: None,
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
    fn the_card_of_an_expanded_charge_is_read_for_the_receipt() {
        let body = json!({"id": "pi_1", "status": "succeeded", "latest_charge": {
            "id": "ch_1", "payment_method_details": {"card": {"brand": "visa", "last4": "4242"}}}});
        assert_eq!(
            classify_json(200, body).unwrap().card,
            Some(Card {
                brand: "visa".into(),
                last4: "4242".into()
            })
        );
        let unexpanded = json!({"id": "pi_1", "status": "succeeded", "latest_charge": "ch_1"});
        assert_eq!(classify_json(200, unexpanded).unwrap().card, None);
    }

    #[test]
    fn a_4xx_without_a_code_ends_the_attempt_instead_of_leaving_it_unknown() {
        assert!(matches!(
            classify_json(400, json!({"error": {"message": "Invalid request"}})),
            Err(ChargeError::InvalidToken(m)) if m == "Invalid request"
        ));
        assert!(matches!(
            classify_json(400, json!("not an error body")),
            Err(ChargeError::InvalidToken(_))
        ));
        assert!(matches!(
            classify_json(404, json!({"error": {"type": "invalid_request_error"}})),
            Err(ChargeError::InvalidToken(_))
        ));
    }

    #[test]
    fn our_own_refused_requests_end_the_attempt_as_refused() {
        for (status, body) in [
            (
                401,
                json!({"error": {"type": "invalid_request_error", "message": "bad key"}}),
            ),
            (403, json!({"error": {"message": "restricted key"}})),
            (
                400,
                json!({"error": {"type": "invalid_request_error", "param": "currency"}}),
            ),
        ] {
            assert!(
                matches!(
                    classify_json(status, body.clone()),
                    Err(ChargeError::Refused(_))
                ),
                "{status} {body}"
            );
        }
    }

    #[test]
    fn only_an_unknown_outcome_is_unavailable() {
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
    fn refunds_are_made_refused_or_unknown() {
        let refund = |status: u16, body: serde_json::Value| {
            classify_refund(
                StatusCode::from_u16(status).unwrap(),
                body.to_string().as_bytes(),
            )
        };
        assert_eq!(
            refund(200, json!({"id": "re_1", "status": "succeeded"})),
            Ok(Refund { id: "re_1".into() })
        );
        assert_eq!(
            refund(200, json!({"id": "re_2", "status": "pending"})),
            Ok(Refund { id: "re_2".into() })
        );
        assert!(matches!(
            refund(200, json!({"id": "re_3", "status": "failed", "failure_reason": "expired_or_canceled_card"})),
            Err(RefundError::Refused(m)) if m.contains("expired_or_canceled_card")
        ));
        assert_eq!(
            refund(
                400,
                json!({"error": {"type": "invalid_request_error", "code": "charge_already_refunded",
                    "message": "Charge ch_1 has already been refunded."}})
            ),
            Err(RefundError::Refused(
                "Charge ch_1 has already been refunded.".into()
            ))
        );
        for status in [500, 503, 429, 409] {
            assert!(matches!(
                refund(status, json!({"error": {"message": "x"}})),
                Err(RefundError::Unavailable(_))
            ));
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
        assert!(form.contains(&("metadata[idempotency_key]", order_id.to_string())));
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
