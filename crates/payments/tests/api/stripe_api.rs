//! `POST /api/payments` charging through Stripe (a local mock of its API): the request Stripe
//! receives, declines, outages and timeouts (503, nothing marked paid, the retry reuses the
//! key), and an intent that settles later through the webhook.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use ticketing_events::Subject;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use crate::{
    helpers::{PaymentReply as _, intent_event, spawn_app_with_stripe},
    stripe_client::{form, header},
};

fn intent(id: &str, status: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": id, "object": "payment_intent", "status": status
    }))
}

async fn answer(server: &MockServer, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(response)
        .mount(server)
        .await;
}

/// Answers a search for intents with `found` (intent bodies).
async fn search_finds(server: &MockServer, found: serde_json::Value) {
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "search_result", "data": found, "has_more": false
        })))
        .mount(server)
        .await;
}

/// The charges (POSTs) Stripe received, leaving out searches.
async fn charges_sent(server: &MockServer) -> Vec<wiremock::Request> {
    let received = server.received_requests().await.unwrap();
    received
        .into_iter()
        .filter(|r| r.method == wiremock::http::Method::POST)
        .collect()
}

/// Answers the first Stripe request with `first`, every later one with `then`.
async fn answer_once_then(server: &MockServer, first: ResponseTemplate, then: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(first)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
    answer(server, then).await;
}

#[tokio::test]
async fn paying_through_stripe_charges_the_exact_cents_once_and_records_the_intent() {
    let stripe = MockServer::start().await;
    answer(&stripe, intent("pi_live_1", "succeeded")).await;
    let app = spawn_app_with_stripe(&stripe.uri(), Duration::from_secs(2)).await;
    let buyer = app.user();
    let order = app.seed_order(&buyer, 1999).await;

    let payment_id = app.pay(&buyer, order, "pm_card_visa").await.created();

    let received = stripe.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(header(&received[0], "idempotency-key"), order.to_string());
    let sent = form(&received[0]);
    for pair in [
        ("amount", "1999".to_string()),
        ("currency", "usd".into()),
        ("confirm", "true".into()),
        ("payment_method", "pm_card_visa".into()),
        ("metadata[order_id]", order.to_string()),
    ] {
        assert!(
            sent.contains(&(pair.0.into(), pair.1.clone())),
            "{pair:?} not in {sent:?}"
        );
    }
    let row = app.payment_row(order).await.unwrap();
    assert_eq!(
        (
            row.id,
            row.state.as_str(),
            row.provider.as_str(),
            row.charge_id.as_deref()
        ),
        (payment_id, "succeeded", "stripe", Some("pi_live_1"))
    );
    assert_eq!(app.order_state(order).await, ("complete".into(), 0));
    assert_eq!(
        app.wait_for_payment_events(order, 1).await,
        [json!({"id": payment_id, "orderId": order, "chargeId": "pi_live_1"})]
    );
    // Paid: the next request never reaches Stripe.
    app.pay(&buyer, order, "pm_card_visa")
        .await
        .assert_error(StatusCode::CONFLICT);
    assert_eq!(stripe.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_stripe_decline_is_402_with_stripes_message_and_nothing_is_paid() {
    let stripe = MockServer::start().await;
    answer(
        &stripe,
        ResponseTemplate::new(402).set_body_json(json!({"error": {
            "type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
            "message": "Your card was declined."}})),
    )
    .await;
    let app = spawn_app_with_stripe(&stripe.uri(), Duration::from_secs(2)).await;
    let buyer = app.user();
    let order = app.insert_order(&buyer, 1000).await;

    let reply = app.pay(&buyer, order, "pm_card_chargeDeclined").await;

    reply.assert_error(StatusCode::PAYMENT_REQUIRED);
    assert_eq!(reply.error_message(), "Your card was declined.");
    assert_eq!(app.payment_row(order).await.unwrap().state, "declined");
    assert_eq!(app.order_state(order).await, ("created".into(), 0));
    assert_eq!(app.outbox_count(Subject::PaymentCreated).await, 0);
}

#[tokio::test]
async fn a_stripe_outage_is_503_marks_nothing_paid_and_the_retry_reuses_the_key_and_parameters() {
    let stripe = MockServer::start().await;
    answer_once_then(
        &stripe,
        ResponseTemplate::new(500).set_body_json(json!({"error": {"type": "api_error",
            "message": "An unknown error occurred"}})),
        intent("pi_after_outage", "succeeded"),
    )
    .await;
    // The 500 came before Stripe acted: a search finds no intent for the attempt.
    search_finds(&stripe, json!([])).await;
    let app = spawn_app_with_stripe(&stripe.uri(), Duration::from_secs(2)).await;
    let buyer = app.user();
    let order = app.insert_order(&buyer, 4200).await;

    let down = app.pay(&buyer, order, "pm_card_visa").await;

    down.assert_error(StatusCode::SERVICE_UNAVAILABLE);
    let row = app.payment_row(order).await.unwrap();
    assert_eq!(
        (row.state.as_str(), row.charge_id.as_deref()),
        ("pending", None)
    );
    assert_eq!(app.order_state(order).await, ("created".into(), 0));
    assert_eq!(app.outbox_count(Subject::PaymentCreated).await, 0);

    let payment_id = app.pay(&buyer, order, "pm_card_visa").await.created();

    assert_eq!(payment_id, row.id);
    let received = charges_sent(&stripe).await;
    assert_eq!(received.len(), 2);
    for sent in &received {
        assert_eq!(header(sent, "idempotency-key"), order.to_string());
        assert_eq!(sent.body, received[0].body);
    }
    assert_eq!(
        app.payment_row(order).await.unwrap().charge_id.as_deref(),
        Some("pi_after_outage")
    );
    assert_eq!(app.wait_for_payment_events(order, 1).await.len(), 1);
}

#[tokio::test]
async fn a_stripe_timeout_is_503_and_the_retry_finds_the_charge_that_may_have_been_made() {
    let stripe = MockServer::start().await;
    // Stripe charges but answers too late; asked afterwards, it has the intent.
    answer(
        &stripe,
        intent("pi_slow", "succeeded").set_delay(Duration::from_secs(3)),
    )
    .await;
    let app = spawn_app_with_stripe(&stripe.uri(), Duration::from_millis(300)).await;
    let buyer = app.user();
    let order = app.insert_order(&buyer, 1999).await;

    app.pay(&buyer, order, "pm_card_visa")
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(app.payment_row(order).await.unwrap().state, "pending");
    assert_eq!(app.order_state(order).await.0, "created");
    search_finds(
        &stripe,
        json!([{"id": "pi_slow", "object": "payment_intent", "status": "succeeded",
            "metadata": {"order_id": order, "idempotency_key": order}}]),
    )
    .await;

    let payment_id = app.pay(&buyer, order, "pm_card_visa").await.created();

    let row = app.payment_row(order).await.unwrap();
    assert_eq!(
        (row.id, row.charge_id.as_deref()),
        (payment_id, Some("pi_slow"))
    );
    // Asked, not charged again.
    assert_eq!(charges_sent(&stripe).await.len(), 1);
    let searches: Vec<_> = stripe
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/v1/payment_intents/search")
        .collect();
    assert_eq!(searches.len(), 1);
    let query: String = searches[0]
        .url
        .query_pairs()
        .find(|(k, _)| k == "query")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    assert_eq!(query, format!("metadata['idempotency_key']:'{order}'"));
    assert_eq!(app.wait_for_payment_events(order, 1).await.len(), 1);
}

#[tokio::test]
async fn a_4xx_without_a_code_ends_the_attempt_and_the_buyer_pays_with_another_card() {
    let stripe = MockServer::start().await;
    answer_once_then(
        &stripe,
        ResponseTemplate::new(400).set_body_json(json!({"error": {"message": "Invalid request"}})),
        intent("pi_good", "succeeded"),
    )
    .await;
    let app = spawn_app_with_stripe(&stripe.uri(), Duration::from_secs(2)).await;
    let buyer = app.user();
    let order = app.insert_order(&buyer, 1500).await;

    let refused = app.pay(&buyer, order, "pm_odd").await;

    refused.assert_error(StatusCode::BAD_REQUEST);
    assert_eq!(refused.json()["errors"][0]["field"], "token");
    assert_eq!(app.payment_row(order).await.unwrap().state, "failed");
    let payment_id = app.pay(&buyer, order, "pm_card_visa").await.created();

    let row = app.payment_row(order).await.unwrap();
    assert_eq!(
        (row.id, row.attempt, row.charge_id.as_deref()),
        (payment_id, 2, Some("pi_good"))
    );
    let sent = charges_sent(&stripe).await;
    assert_eq!(sent.len(), 2);
    // The second attempt sent the new card under a new key, never the old token again.
    assert_eq!(header(&sent[1], "idempotency-key"), format!("{order}:2"));
    assert!(form(&sent[1]).contains(&("payment_method".into(), "pm_card_visa".into())));
    assert_eq!(app.order_state(order).await.0, "complete");
}

#[tokio::test]
async fn a_processing_intent_answers_202_and_the_signed_webhook_completes_the_order_once() {
    let stripe = MockServer::start().await;
    answer(&stripe, intent("pi_async", "processing")).await;
    let app = spawn_app_with_stripe(&stripe.uri(), Duration::from_secs(2)).await;
    let buyer = app.user();
    let order = app.insert_order(&buyer, 1999).await;

    let accepted = app.pay(&buyer, order, "pm_sepa").await;

    accepted.assert_status(StatusCode::ACCEPTED);
    let payment_id = accepted.payment_id();
    let row = app.payment_row(order).await.unwrap();
    assert_eq!(
        (row.state.as_str(), row.charge_id.as_deref()),
        ("processing", Some("pi_async"))
    );
    assert_eq!(app.order_state(order).await.0, "created");
    assert_eq!(app.outbox_count(Subject::PaymentCreated).await, 0);
    // Asking again answers the same, without charging again.
    let again = app.pay(&buyer, order, "pm_sepa").await;
    again.assert_status(StatusCode::ACCEPTED);
    assert_eq!(again.payment_id(), payment_id);
    assert_eq!(stripe.received_requests().await.unwrap().len(), 1);

    let event = intent_event("evt_1", "payment_intent.succeeded", "pi_async", order, 1999);
    app.post_signed_webhook(&event)
        .await
        .assert_status(StatusCode::OK);
    app.post_signed_webhook(&event)
        .await
        .assert_status(StatusCode::OK);

    let row = app.payment_row(order).await.unwrap();
    assert_eq!((row.id, row.state.as_str()), (payment_id, "succeeded"));
    assert_eq!(app.order_state(order).await, ("complete".into(), 0));
    assert_eq!(
        app.wait_for_payment_events(order, 1).await,
        [json!({"id": payment_id, "orderId": order, "chargeId": "pi_async"})]
    );
    app.settle().await;
    assert_eq!(app.payment_events(order).await.len(), 1);
    app.pay(&buyer, order, "pm_sepa")
        .await
        .assert_error(StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_processing_intent_that_fails_later_lets_the_buyer_pay_again() {
    let stripe = MockServer::start().await;
    answer_once_then(
        &stripe,
        intent("pi_async", "processing"),
        intent("pi_card", "succeeded"),
    )
    .await;
    let app = spawn_app_with_stripe(&stripe.uri(), Duration::from_secs(2)).await;
    let buyer = app.user();
    let order = app.insert_order(&buyer, 1999).await;
    app.pay(&buyer, order, "pm_sepa")
        .await
        .assert_status(StatusCode::ACCEPTED);

    let failed = intent_event(
        "evt_f",
        "payment_intent.payment_failed",
        "pi_async",
        order,
        1999,
    );
    app.post_signed_webhook(&failed)
        .await
        .assert_status(StatusCode::OK);

    let row = app.payment_row(order).await.unwrap();
    assert_eq!(
        (row.state.as_str(), row.failure_message.as_deref()),
        ("declined", Some("Your card has insufficient funds."))
    );
    let payment_id = app.pay(&buyer, order, "pm_card_visa").await.created();
    let received = stripe.received_requests().await.unwrap();
    assert_eq!(
        received
            .iter()
            .map(|r| header(r, "idempotency-key"))
            .collect::<Vec<_>>(),
        [order.to_string(), format!("{order}:2")]
    );
    assert_eq!(app.payment_row(order).await.unwrap().id, payment_id);
    assert_eq!(
        app.wait_for_payment_events(order, 1).await[0]["chargeId"],
        "pi_card"
    );
}
