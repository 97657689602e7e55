//! The Stripe client against a local mock of Stripe's API: the exact request (form, cents,
//! idempotency key, pinned version, credentials) and how every kind of answer is read.

use std::time::Duration;

use serde_json::{Value, json};
use ticketing_common::testing;
use ticketing_events::Cents;
use ticketing_payments::provider::{
    Charge, ChargeError, ChargeRequest, ChargeStatus, PaymentProvider, StripeClient,
    stripe::API_VERSION,
};
use uuid::Uuid;
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{method, path},
};

use crate::helpers::stripe_key;

fn client(server: &MockServer) -> StripeClient {
    StripeClient::with_timeout(stripe_key(), &server.uri(), Duration::from_millis(500))
        .expect("client")
}

fn request(order_id: Uuid, amount_cents: i64, token: &str) -> ChargeRequest {
    ChargeRequest {
        idempotency_key: order_id.to_string(),
        order_id,
        amount_cents,
        currency: "usd".into(),
        token: token.into(),
    }
}

fn intent(id: &str, status: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": id, "object": "payment_intent", "status": status, "amount": 1999, "currency": "usd"
    }))
}

fn stripe_error(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

/// Mounts `response` for every `POST /v1/payment_intents`.
async fn answer(server: &MockServer, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(response)
        .mount(server)
        .await;
}

/// Decodes an `application/x-www-form-urlencoded` body into its pairs, in order.
pub fn form(request: &Request) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ascii");
                out.push(u8::from_str_radix(hex, 16).expect("hex escape"));
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).expect("utf-8")
    }
    std::str::from_utf8(&request.body)
        .expect("form body")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

/// One header of a received request.
pub fn header(request: &Request, name: &str) -> String {
    request
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn a_charge_is_a_confirmed_payment_intent_for_the_exact_cents_keyed_by_the_order_id() {
    let server = MockServer::start().await;
    answer(&server, intent("pi_123", "succeeded")).await;
    let order = Uuid::now_v7();
    // The price as the API and events carry it, 19.99, becomes 1999 cents without a float.
    let price = Cents::parse_decimal("19.99").unwrap();

    let charge = client(&server)
        .charge(&request(order, price.0, "pm_card_visa"))
        .await;

    assert_eq!(
        charge,
        Ok(Charge {
            id: "pi_123".into(),
            status: ChargeStatus::Succeeded,
            card: None,
        })
    );
    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    let sent = &received[0];
    assert_eq!(sent.url.path(), "/v1/payment_intents");
    assert_eq!(header(sent, "authorization"), "Bearer sk_test_payments_key");
    assert_eq!(header(sent, "idempotency-key"), order.to_string());
    assert_eq!(header(sent, "stripe-version"), API_VERSION);
    assert_eq!(API_VERSION, "2024-06-20");
    assert_eq!(
        header(sent, "content-type"),
        "application/x-www-form-urlencoded"
    );
    let order_id = order.to_string();
    assert_eq!(
        form(sent),
        pairs(&[
            ("amount", "1999"),
            ("currency", "usd"),
            ("confirm", "true"),
            ("metadata[order_id]", &order_id),
            ("metadata[idempotency_key]", &order_id),
            ("expand[]", "latest_charge"),
            ("automatic_payment_methods[enabled]", "true"),
            ("automatic_payment_methods[allow_redirects]", "never"),
            ("error_on_requires_action", "true"),
            ("payment_method", "pm_card_visa"),
        ])
    );
}

#[tokio::test]
async fn amounts_are_the_prices_integer_cents_for_every_price() {
    let server = MockServer::start().await;
    answer(&server, intent("pi_1", "succeeded")).await;
    let client = client(&server);
    let prices = [
        ("19.99", "1999"),
        ("0.1", "10"),
        ("0.07", "7"),
        ("25.50", "2550"),
        ("1000000", "100000000"),
        ("4.35", "435"),
    ];

    for (price, _) in prices {
        let cents = Cents::parse_decimal(price).unwrap();
        client
            .charge(&request(Uuid::now_v7(), cents.0, "pm_card_visa"))
            .await
            .unwrap();
    }

    let received = server.received_requests().await.unwrap();
    let amounts: Vec<String> = received
        .iter()
        .map(|r| {
            form(r)
                .into_iter()
                .find(|(k, _)| k == "amount")
                .map(|(_, v)| v)
                .unwrap()
        })
        .collect();
    assert_eq!(
        amounts,
        prices
            .iter()
            .map(|(_, c)| c.to_string())
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_card_token_is_sent_as_card_data_of_the_payment_intent() {
    let server = MockServer::start().await;
    answer(&server, intent("pi_2", "succeeded")).await;

    client(&server)
        .charge(&request(Uuid::now_v7(), 500, "tok_visa"))
        .await
        .unwrap();

    let sent = form(&server.received_requests().await.unwrap()[0]);
    assert!(sent.contains(&("payment_method_data[type]".into(), "card".into())));
    assert!(sent.contains(&("payment_method_data[card][token]".into(), "tok_visa".into())));
    assert!(!sent.iter().any(|(k, _)| k == "payment_method"), "{sent:?}");
}

#[tokio::test]
async fn a_card_decline_is_declined_with_stripes_message() {
    let server = MockServer::start().await;
    answer(
        &server,
        stripe_error(
            402,
            json!({"error": {"type": "card_error", "code": "card_declined",
                "decline_code": "insufficient_funds", "message": "Your card has insufficient funds.",
                "payment_intent": {"id": "pi_3", "status": "requires_payment_method"}}}),
        ),
    )
    .await;

    let charge = client(&server)
        .charge(&request(
            Uuid::now_v7(),
            1999,
            "pm_card_visa_chargeDeclinedInsufficientFunds",
        ))
        .await;

    assert_eq!(
        charge,
        Err(ChargeError::Declined(
            "Your card has insufficient funds.".into()
        ))
    );
}

#[tokio::test]
async fn a_card_needing_authentication_is_declined_with_stripes_message() {
    let server = MockServer::start().await;
    answer(
        &server,
        stripe_error(
            402,
            json!({"error": {"type": "card_error", "code": "authentication_required",
                "message": "Your card was declined. This transaction requires authentication."}}),
        ),
    )
    .await;

    let charge = client(&server)
        .charge(&request(
            Uuid::now_v7(),
            1999,
            "pm_card_authenticationRequired",
        ))
        .await;

    assert!(
        matches!(&charge, Err(ChargeError::Declined(m)) if m.contains("requires authentication")),
        "{charge:?}"
    );
}

#[tokio::test]
async fn an_unknown_payment_method_is_an_invalid_token() {
    let server = MockServer::start().await;
    answer(
        &server,
        stripe_error(
            400,
            json!({"error": {"type": "invalid_request_error", "code": "resource_missing",
                "param": "payment_method", "message": "No such PaymentMethod: 'pm_nope'"}}),
        ),
    )
    .await;

    let charge = client(&server)
        .charge(&request(Uuid::now_v7(), 1999, "pm_nope"))
        .await;

    assert_eq!(
        charge,
        Err(ChargeError::InvalidToken(
            "No such PaymentMethod: 'pm_nope'".into()
        ))
    );
}

#[tokio::test]
async fn stripe_failures_are_unavailable_never_a_charge_or_a_decline() {
    for (status, body) in [
        (
            500,
            json!({"error": {"type": "api_error", "message": "An unknown error occurred"}}),
        ),
        (502, json!("<html>Bad gateway</html>")),
        (503, json!({})),
        (
            429,
            json!({"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests"}}),
        ),
        (
            409,
            json!({"error": {"type": "idempotency_error", "message": "There is currently another in-progress request using this Idempotent Key"}}),
        ),
    ] {
        let server = MockServer::start().await;
        answer(&server, stripe_error(status, body)).await;

        let charge = client(&server)
            .charge(&request(Uuid::now_v7(), 1999, "pm_card_visa"))
            .await;

        assert!(
            matches!(&charge, Err(ChargeError::Unavailable(reason)) if reason.contains(&status.to_string())),
            "{status}: {charge:?}"
        );
    }
}

#[tokio::test]
async fn a_key_stripe_refuses_ends_the_attempt_as_refused_not_unknown() {
    let server = MockServer::start().await;
    answer(
        &server,
        stripe_error(
            401,
            json!({"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}),
        ),
    )
    .await;

    let charge = client(&server)
        .charge(&request(Uuid::now_v7(), 1999, "pm_card_visa"))
        .await;

    assert!(
        matches!(&charge, Err(ChargeError::Refused(reason)) if reason.contains("Invalid API Key")),
        "{charge:?}"
    );
}

#[tokio::test]
async fn a_stripe_that_does_not_answer_in_time_is_unavailable() {
    let server = MockServer::start().await;
    answer(
        &server,
        intent("pi_slow", "succeeded").set_delay(Duration::from_secs(3)),
    )
    .await;
    let started = std::time::Instant::now();

    let charge = client(&server)
        .charge(&request(Uuid::now_v7(), 1999, "pm_card_visa"))
        .await;

    assert!(
        matches!(&charge, Err(ChargeError::Unavailable(reason)) if reason.contains("timed out")),
        "{charge:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_stripe_that_cannot_be_reached_is_unavailable() {
    let base = format!("http://127.0.0.1:{}", testing::free_port());
    let client =
        StripeClient::with_timeout(stripe_key(), &base, Duration::from_millis(500)).unwrap();

    let charge = client
        .charge(&request(Uuid::now_v7(), 1999, "pm_card_visa"))
        .await;

    assert!(
        matches!(charge, Err(ChargeError::Unavailable(_))),
        "{charge:?}"
    );
}

#[tokio::test]
async fn a_retry_after_an_outage_sends_the_same_key_and_parameters_and_gets_the_same_charge() {
    let server = MockServer::start().await;
    // Stripe fails once, then answers; a replay under the same key returns the same intent.
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(stripe_error(500, json!({"error": {"type": "api_error"}})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    answer(
        &server,
        intent("pi_same", "succeeded").insert_header("Idempotent-Replayed", "true"),
    )
    .await;
    let client = client(&server);
    let charge = request(Uuid::now_v7(), 1999, "pm_card_visa");

    let first = client.charge(&charge).await;
    let second = client.charge(&charge).await;
    let third = client.charge(&charge).await;

    assert!(
        matches!(first, Err(ChargeError::Unavailable(_))),
        "{first:?}"
    );
    assert_eq!(second.as_ref().map(|c| c.id.as_str()), Ok("pi_same"));
    assert_eq!(second, third);
    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 3);
    for sent in &received {
        assert_eq!(header(sent, "idempotency-key"), charge.idempotency_key);
        assert_eq!(sent.body, received[0].body, "a retry changes no parameter");
    }
}

#[tokio::test]
async fn a_processing_intent_is_accepted_and_one_that_did_not_go_through_is_declined() {
    let server = MockServer::start().await;
    answer(&server, intent("pi_p", "processing")).await;
    let processing = client(&server)
        .charge(&request(Uuid::now_v7(), 1999, "pm_x"))
        .await;
    assert_eq!(
        processing,
        Ok(Charge {
            id: "pi_p".into(),
            status: ChargeStatus::Processing,
            card: None,
        })
    );

    let server = MockServer::start().await;
    answer(
        &server,
        ResponseTemplate::new(200).set_body_json(json!({"id": "pi_r",
            "status": "requires_payment_method",
            "last_payment_error": {"type": "card_error", "message": "Your card was declined."}})),
    )
    .await;
    let failed = client(&server)
        .charge(&request(Uuid::now_v7(), 1999, "pm_x"))
        .await;
    assert_eq!(
        failed,
        Err(ChargeError::Declined("Your card was declined.".into()))
    );
}
