//! Stripe webhooks: the `Stripe-Signature` check and the events we act on.
//!
//! Stripe signs `"{t}.{raw body}"` with HMAC-SHA256 under the endpoint's secret and sends
//! `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]` (several `v1` while a secret
//! is being rolled; `v0` and unknown schemes are ignored). The check runs on the raw bytes,
//! before any parsing, compares in constant time, and refuses timestamps more than
//! [`TOLERANCE_SECS`] away from now so a captured event cannot be replayed later.

use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// How far a signature's timestamp may be from now, either way.
pub const TOLERANCE_SECS: i64 = 300;

/// Why a webhook was refused before being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("Missing Stripe-Signature header")]
    Missing,
    #[error("Malformed Stripe-Signature header")]
    Malformed,
    #[error("No signature in Stripe-Signature matches the payload")]
    Mismatch,
    #[error("The Stripe-Signature timestamp is outside the tolerance")]
    Expired,
}

/// The `v1` signature of a payload at a timestamp, as hex: what Stripe sends.
pub fn sign(secret: &[u8], timestamp: &str, payload: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, payload).finalize().into_bytes())
}

fn mac(secret: &[u8], timestamp: &str, payload: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

/// Checks a `Stripe-Signature` header against the raw payload at `now` (unix seconds). Any
/// one `v1` matching is enough. A valid signature with an old (or far future) timestamp is
/// [`SignatureError::Expired`].
pub fn verify_signature(
    secret: &[u8],
    header: Option<&str>,
    payload: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            return Err(SignatureError::Malformed);
        };
        match key {
            "t" if timestamp.is_none() => timestamp = Some(value),
            "t" => return Err(SignatureError::Malformed),
            "v1" => signatures.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    let seconds: i64 = timestamp.parse().map_err(|_| SignatureError::Malformed)?;
    let expected = mac(secret, timestamp, payload).finalize().into_bytes();
    let matched = signatures.iter().any(|candidate| {
        hex::decode(candidate)
            .is_ok_and(|bytes| bytes.len() == expected.len() && bool::from(bytes.ct_eq(&expected)))
    });
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    if now.abs_diff(seconds) > TOLERANCE_SECS.unsigned_abs() {
        return Err(SignatureError::Expired);
    }
    Ok(())
}

/// A verified Stripe event, reduced to what payments acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeEvent {
    /// `evt_...`.
    pub id: String,
    /// `payment_intent.succeeded`, ...
    pub kind: String,
    pub action: WebhookAction,
}

/// What an event asks of us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookAction {
    /// `payment_intent.succeeded`: the intent's money has moved.
    IntentSucceeded(IntentRef),
    /// `payment_intent.payment_failed`: an intent that was processing failed.
    IntentFailed { intent: IntentRef, message: String },
    /// `charge.refunded`, or `refund.updated` to `succeeded`: the intent's charge was given
    /// back (`refund_id` when the event names the refund).
    RefundSucceeded {
        intent_id: String,
        refund_id: Option<String>,
    },
    /// `refund.updated` or `refund.failed` to `failed`/`canceled`: a refund Stripe had
    /// accepted did not go through.
    RefundFailed { intent_id: String, reason: String },
    /// Anything else: acknowledged and ignored.
    Ignore,
}

/// The PaymentIntent an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentRef {
    /// `pi_...`: our charge id.
    pub intent_id: String,
    /// `metadata.order_id`, which every intent we create carries; `None` for intents that
    /// are not ours.
    pub order_id: Option<Uuid>,
    /// The amount in the smallest currency unit.
    pub amount: Option<i64>,
    /// What was received, when the intent says (`amount_received`).
    pub amount_received: Option<i64>,
    /// Lower-case ISO code.
    pub currency: Option<String>,
    /// The event's `livemode`: real money or Stripe's test mode.
    pub livemode: Option<bool>,
}

/// What an event must agree with: the recorded attempt and how we charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected<'a> {
    pub amount_cents: i64,
    pub currency: &'a str,
    pub livemode: bool,
}

/// How an event disagrees with the recorded attempt. A missing field disagrees too: every
/// event Stripe sends about a PaymentIntent carries all three.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("amount {got:?} differs from the attempt's {expected} cents")]
    Amount { expected: i64, got: Option<i64> },
    #[error("currency {got:?} differs from the attempt's {expected}")]
    Currency {
        expected: String,
        got: Option<String>,
    },
    #[error("livemode {got:?} differs from the provider's {expected}")]
    Livemode { expected: bool, got: Option<bool> },
}

impl Mismatch {
    /// The field that disagrees, for a metric label.
    pub fn field(&self) -> &'static str {
        match self {
            Mismatch::Amount { .. } => "amount",
            Mismatch::Currency { .. } => "currency",
            Mismatch::Livemode { .. } => "livemode",
        }
    }
}

impl IntentRef {
    /// Whether the intent is the charge the attempt asked for: the same amount, currency and
    /// mode; and for an intent that `succeeded`, the same amount received (a failed one
    /// received nothing).
    pub fn check(&self, expected: Expected<'_>, succeeded: bool) -> Result<(), Mismatch> {
        let amount_ok = self.amount == Some(expected.amount_cents)
            && (!succeeded || self.amount_received == Some(expected.amount_cents));
        if !amount_ok {
            return Err(Mismatch::Amount {
                expected: expected.amount_cents,
                got: if succeeded {
                    self.amount_received
                } else {
                    self.amount
                },
            });
        }
        if self.currency.as_deref() != Some(expected.currency) {
            return Err(Mismatch::Currency {
                expected: expected.currency.to_owned(),
                got: self.currency.clone(),
            });
        }
        if self.livemode != Some(expected.livemode) {
            return Err(Mismatch::Livemode {
                expected: expected.livemode,
                got: self.livemode,
            });
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct RawEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    livemode: Option<bool>,
    data: RawData,
}

#[derive(Deserialize)]
struct RawData {
    object: Value,
}

/// The PaymentIntent a charge or refund object belongs to; `None` for one made without an
/// intent (never by us).
fn intent_of(object: &Value) -> Option<String> {
    object["payment_intent"]
        .as_str()
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

/// Reads a verified webhook payload.
pub fn parse_event(payload: &[u8]) -> Result<StripeEvent, String> {
    let raw: RawEvent =
        serde_json::from_slice(payload).map_err(|e| format!("not a Stripe event: {e}"))?;
    let intent = || -> Result<IntentRef, String> {
        let object = &raw.data.object;
        let intent_id = object["id"]
            .as_str()
            .filter(|id| !id.is_empty())
            .ok_or("payment intent event without an intent id")?;
        Ok(IntentRef {
            intent_id: intent_id.to_owned(),
            order_id: object["metadata"]["order_id"]
                .as_str()
                .and_then(|id| Uuid::parse_str(id).ok()),
            amount: object["amount"].as_i64(),
            amount_received: object["amount_received"].as_i64(),
            currency: object["currency"].as_str().map(str::to_ascii_lowercase),
            livemode: raw.livemode,
        })
    };
    let action = match raw.kind.as_str() {
        "payment_intent.succeeded" => WebhookAction::IntentSucceeded(intent()?),
        "payment_intent.payment_failed" => WebhookAction::IntentFailed {
            intent: intent()?,
            message: raw.data.object["last_payment_error"]["message"]
                .as_str()
                .unwrap_or("The payment failed.")
                .to_owned(),
        },
        // Refunds of charges made without an intent are not ours: ignored.
        "charge.refunded" => {
            let object = &raw.data.object;
            match intent_of(object) {
                Some(intent_id) => WebhookAction::RefundSucceeded {
                    intent_id,
                    refund_id: object["refunds"]["data"][0]["id"]
                        .as_str()
                        .map(str::to_owned),
                },
                None => WebhookAction::Ignore,
            }
        }
        "refund.updated" | "refund.failed" => {
            let object = &raw.data.object;
            match (intent_of(object), object["status"].as_str()) {
                (Some(intent_id), Some("succeeded")) => WebhookAction::RefundSucceeded {
                    intent_id,
                    refund_id: object["id"].as_str().map(str::to_owned),
                },
                (Some(intent_id), Some("failed" | "canceled")) => WebhookAction::RefundFailed {
                    intent_id,
                    reason: object["failure_reason"]
                        .as_str()
                        .unwrap_or("the refund failed")
                        .to_owned(),
                },
                _ => WebhookAction::Ignore,
            }
        }
        _ => WebhookAction::Ignore,
    };
    Ok(StripeEvent {
        id: raw.id,
        kind: raw.kind,
        action,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn refund_events_name_the_intent_and_what_became_of_the_refund() {
        let refunded = json!({"id": "evt_r", "type": "charge.refunded", "data": {"object": {
            "id": "ch_1", "payment_intent": "pi_1", "refunds": {"data": [{"id": "re_1"}]}}}});
        assert_eq!(
            parse_event(refunded.to_string().as_bytes()).unwrap().action,
            WebhookAction::RefundSucceeded {
                intent_id: "pi_1".into(),
                refund_id: Some("re_1".into())
            }
        );
        let failed = json!({"id": "evt_f", "type": "refund.updated", "data": {"object": {
            "id": "re_1", "payment_intent": "pi_1", "status": "failed",
            "failure_reason": "expired_or_canceled_card"}}});
        assert_eq!(
            parse_event(failed.to_string().as_bytes()).unwrap().action,
            WebhookAction::RefundFailed {
                intent_id: "pi_1".into(),
                reason: "expired_or_canceled_card".into()
            }
        );
        let pending = json!({"id": "evt_p", "type": "refund.updated", "data": {"object": {
            "id": "re_1", "payment_intent": "pi_1", "status": "pending"}}});
        assert_eq!(
            parse_event(pending.to_string().as_bytes()).unwrap().action,
            WebhookAction::Ignore
        );
        let orphan = json!({"id": "evt_o", "type": "charge.refunded", "data": {"object": {}}});
        assert_eq!(
            parse_event(orphan.to_string().as_bytes()).unwrap().action,
            WebhookAction::Ignore
        );
    }

    const SECRET: &[u8] = b"whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1"}"#;
    const T: i64 = 1_700_000_000;

    fn header(t: i64, secret: &[u8], body: &[u8]) -> String {
        format!("t={t},v1={}", sign(secret, &t.to_string(), body))
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: python3 hmac.new(secret, b"1700000000." + body, sha256).
        assert_eq!(
            sign(SECRET, "1700000000", BODY),
            "248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a"
        );
    }

    #[test]
    fn a_fresh_signature_over_the_exact_bytes_is_accepted() {
        let header = header(T, SECRET, BODY);
        assert_eq!(verify_signature(SECRET, Some(&header), BODY, T), Ok(()));
        assert_eq!(
            verify_signature(SECRET, Some(&header), BODY, T + 300),
            Ok(())
        );
        assert_eq!(
            verify_signature(SECRET, Some(&header), BODY, T - 300),
            Ok(())
        );
    }

    #[test]
    fn any_v1_may_match_and_other_schemes_are_ignored() {
        let good = sign(SECRET, &T.to_string(), BODY);
        let header = format!("t={T}, v0=abc, v1={}, v1={good}, x=1", "00".repeat(32));
        assert_eq!(verify_signature(SECRET, Some(&header), BODY, T), Ok(()));
    }

    #[test]
    fn a_changed_body_another_secret_or_a_changed_timestamp_do_not_match() {
        let header = header(T, SECRET, BODY);
        assert_eq!(
            verify_signature(SECRET, Some(&header), br#"{"id":"evt_2"}"#, T),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"whsec_other", Some(&header), BODY, T),
            Err(SignatureError::Mismatch)
        );
        let moved = header.replace(&T.to_string(), &(T + 1).to_string());
        assert_eq!(
            verify_signature(SECRET, Some(&moved), BODY, T),
            Err(SignatureError::Mismatch)
        );
        let upper = format!(
            "t={T},v1={}",
            sign(SECRET, &T.to_string(), BODY).to_uppercase()
        );
        assert_eq!(
            verify_signature(SECRET, Some(&upper), BODY, T),
            Ok(()),
            "hex is hex"
        );
        let short = format!("t={T},v1={}", &sign(SECRET, &T.to_string(), BODY)[..62]);
        assert_eq!(
            verify_signature(SECRET, Some(&short), BODY, T),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn old_and_far_future_timestamps_are_expired() {
        let header = header(T, SECRET, BODY);
        assert_eq!(
            verify_signature(SECRET, Some(&header), BODY, T + 301),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            verify_signature(SECRET, Some(&header), BODY, T - 301),
            Err(SignatureError::Expired)
        );
    }

    #[test]
    fn missing_and_malformed_headers_are_refused() {
        assert_eq!(
            verify_signature(SECRET, None, BODY, T),
            Err(SignatureError::Missing)
        );
        let v1 = sign(SECRET, &T.to_string(), BODY);
        for bad in [
            String::new(),
            format!("v1={v1}"),
            format!("t=soon,v1={v1}"),
            format!("t={T};v1={v1}"),
            format!("t={T},t={T},v1={v1}"),
        ] {
            assert_eq!(
                verify_signature(SECRET, Some(&bad), BODY, T),
                Err(SignatureError::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            verify_signature(SECRET, Some(&format!("t={T}")), BODY, T),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn intent_events_name_the_intent_and_our_order() {
        let order = Uuid::now_v7();
        let event = json!({
            "id": "evt_1", "type": "payment_intent.succeeded", "livemode": false,
            "data": {"object": {"id": "pi_1", "amount": 1999, "amount_received": 1999,
                "currency": "USD", "metadata": {"order_id": order}}}
        });
        assert_eq!(
            parse_event(event.to_string().as_bytes()).unwrap(),
            StripeEvent {
                id: "evt_1".into(),
                kind: "payment_intent.succeeded".into(),
                action: WebhookAction::IntentSucceeded(IntentRef {
                    intent_id: "pi_1".into(),
                    order_id: Some(order),
                    amount: Some(1999),
                    amount_received: Some(1999),
                    currency: Some("usd".into()),
                    livemode: Some(false),
                }),
            }
        );
        let failed = json!({
            "id": "evt_2", "type": "payment_intent.payment_failed",
            "data": {"object": {"id": "pi_1", "metadata": {},
                "last_payment_error": {"message": "Insufficient funds."}}}
        });
        assert_eq!(
            parse_event(failed.to_string().as_bytes()).unwrap().action,
            WebhookAction::IntentFailed {
                intent: IntentRef {
                    intent_id: "pi_1".into(),
                    order_id: None,
                    amount: None,
                    amount_received: None,
                    currency: None,
                    livemode: None,
                },
                message: "Insufficient funds.".into()
            }
        );
    }

    #[test]
    fn an_intent_matches_only_the_attempts_amount_currency_and_mode() {
        let intent = IntentRef {
            intent_id: "pi_1".into(),
            order_id: Some(Uuid::now_v7()),
            amount: Some(25_000),
            amount_received: Some(25_000),
            currency: Some("usd".into()),
            livemode: Some(false),
        };
        let expected = Expected {
            amount_cents: 25_000,
            currency: "usd",
            livemode: false,
        };
        assert_eq!(intent.check(expected, true), Ok(()));
        let one_cent = IntentRef {
            amount: Some(1),
            amount_received: Some(1),
            ..intent.clone()
        };
        assert_eq!(
            one_cent.check(expected, true).unwrap_err().field(),
            "amount"
        );
        let short = IntentRef {
            amount_received: Some(1),
            ..intent.clone()
        };
        assert_eq!(short.check(expected, true).unwrap_err().field(), "amount");
        for received in [None, Some(0)] {
            let nothing = IntentRef {
                amount_received: received,
                ..intent.clone()
            };
            assert_eq!(
                nothing.check(expected, true).unwrap_err().field(),
                "amount",
                "a success that received {received:?}"
            );
            assert_eq!(
                nothing.check(expected, false),
                Ok(()),
                "a failure received nothing"
            );
        }
        let no_amount = IntentRef {
            amount: None,
            ..intent.clone()
        };
        assert_eq!(
            no_amount.check(expected, false).unwrap_err().field(),
            "amount"
        );
        let euros = IntentRef {
            currency: Some("eur".into()),
            ..intent.clone()
        };
        assert_eq!(euros.check(expected, true).unwrap_err().field(), "currency");
        let live = IntentRef {
            livemode: Some(true),
            ..intent.clone()
        };
        assert_eq!(live.check(expected, false).unwrap_err().field(), "livemode");
        let unsaid = IntentRef {
            livemode: None,
            ..intent
        };
        assert_eq!(
            unsaid.check(expected, true).unwrap_err().field(),
            "livemode"
        );
    }

    #[test]
    fn other_events_are_ignored_and_non_events_refused() {
        let event = json!({"id": "evt_3", "type": "customer.created", "data": {"object": {}}});
        assert_eq!(
            parse_event(event.to_string().as_bytes()).unwrap().action,
            WebhookAction::Ignore
        );
        assert!(parse_event(b"not json").is_err());
        assert!(parse_event(br#"{"id": "evt_4"}"#).is_err());
        let no_intent =
            json!({"id": "e", "type": "payment_intent.succeeded", "data": {"object": {}}});
        assert!(parse_event(no_intent.to_string().as_bytes()).is_err());
    }
}
