//! `POST /api/payments` with the development provider: the contract's checks in order, one
//! charge of the exact price, `payment.created` through the outbox, declines and outages.

use reqwest::{Method, StatusCode};
use serde_json::json;
use ticketing_events::Subject;
use uuid::Uuid;

use crate::helpers::PaymentReply as _;
use crate::helpers::spawn_app;

#[tokio::test]
async fn paying_a_live_order_charges_its_price_once_completes_it_and_announces_payment_created() {
    let app = spawn_app().await;
    let buyer = app.user();
    let order = app.seed_order(&buyer, 1999).await;

    let payment_id = app.pay(&buyer, order, "tok_visa").await.created();

    let row = app.payment_row(order).await.expect("payment stored");
    assert_eq!(row.id, payment_id);
    assert_eq!(
        (
            row.state.as_str(),
            row.attempt,
            row.amount_cents,
            row.currency.as_str(),
            row.provider.as_str()
        ),
        ("succeeded", 1, 1999, "usd", "dev")
    );
    let charge_id = row.charge_id.expect("charge recorded");
    assert!(charge_id.starts_with("ch_dev_"), "{charge_id}");
    assert_eq!(app.order_state(order).await, ("complete".into(), 0));
    // One call, one charge, of the exact cents, keyed by the order id.
    let charges = app.dev().charges();
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(
        (
            charges[0].id.as_str(),
            charges[0].idempotency_key.clone(),
            charges[0].order_id,
            charges[0].amount_cents
        ),
        (charge_id.as_str(), order.to_string(), order, 1999)
    );
    assert_eq!(app.dev().calls().len(), 1);
    // payment.created leaves through the outbox, with the payment's, order's and charge's ids.
    let events = app.wait_for_payment_events(order, 1).await;
    assert_eq!(
        events,
        [json!({"id": payment_id, "orderId": order, "chargeId": charge_id})]
    );
    assert_eq!(app.outbox_count(Subject::PaymentCreated).await, 1);
}

#[tokio::test]
async fn paying_an_order_that_is_already_paid_is_409_and_charges_nothing_more() {
    let app = spawn_app().await;
    let buyer = app.user();
    let order = app.insert_order(&buyer, 5000).await;
    let payment_id = app.pay(&buyer, order, "tok_visa").await.created();

    let again = app.pay(&buyer, order, "tok_visa").await;
    let declined_card = app.pay(&buyer, order, "tok_chargeDeclined").await;

    again.assert_error(StatusCode::CONFLICT);
    assert_eq!(again.error_message(), "The order is already paid");
    declined_card.assert_error(StatusCode::CONFLICT);
    assert_eq!(app.dev().calls().len(), 1);
    assert_eq!(app.payment_count().await, 1);
    assert_eq!(app.payment_row(order).await.unwrap().id, payment_id);
    assert_eq!(app.outbox_count(Subject::PaymentCreated).await, 1);
}

#[tokio::test]
async fn an_anonymous_or_forged_session_is_401_before_anything_else() {
    let app = spawn_app().await;
    let buyer = app.user();
    let order = app.insert_order(&buyer, 1000).await;
    let forged = crate::helpers::User {
        id: buyer.id,
        cookie: format!("{}x", buyer.cookie),
    };

    // Anonymous: 401 whatever the body says, even an invalid one or an unknown order.
    for body in [
        json!({"orderId": order, "token": "tok_visa"}),
        json!({}),
        json!({"orderId": Uuid::now_v7(), "token": "tok_visa"}),
    ] {
        app.post_payment(None, &body)
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
    }
    app.post_payment(
        Some(&forged),
        &json!({"orderId": order, "token": "tok_visa"}),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED);

    assert!(app.dev().calls().is_empty());
    assert_eq!(app.payment_count().await, 0);
    assert_eq!(app.order_state(order).await, ("created".into(), 0));
}

#[tokio::test]
async fn a_payment_without_a_valid_order_id_or_token_is_400_naming_the_fields() {
    let app = spawn_app().await;
    let buyer = app.user();
    let order = app.insert_order(&buyer, 1000).await;

    for (body, fields) in [
        (json!({}), &["orderId", "token"][..]),
        (json!({"orderId": "", "token": ""}), &["orderId", "token"]),
        (json!({"orderId": "abc", "token": "tok_visa"}), &["orderId"]),
        (json!({"orderId": 42, "token": "tok_visa"}), &["orderId"]),
        (json!({"orderId": order, "token": 5}), &["token"]),
        (json!({"orderId": order, "token": "tok visa"}), &["token"]),
        (json!({"orderId": order}), &["token"]),
        // Validation comes before existence: an unknown order without a token is a 400.
        (json!({"orderId": Uuid::now_v7()}), &["token"]),
    ] {
        let reply = app.post_payment(Some(&buyer), &body).await;
        reply.assert_invalid(fields);
    }
    // Malformed JSON and a wrong content type are 400s in the error body too.
    let malformed = app
        .send(
            Method::POST,
            "/api/payments",
            Some(&buyer),
            Some((Some("application/json"), "{\"orderId\": ".into())),
        )
        .await;
    malformed.assert_error(StatusCode::BAD_REQUEST);
    let text = app
        .send(
            Method::POST,
            "/api/payments",
            Some(&buyer),
            Some((
                Some("text/plain"),
                json!({"orderId": order, "token": "tok_visa"}).to_string(),
            )),
        )
        .await;
    text.assert_error(StatusCode::BAD_REQUEST);

    assert!(app.dev().calls().is_empty());
    assert_eq!(app.payment_count().await, 0);
}

#[tokio::test]
async fn paying_an_unknown_order_is_404() {
    let app = spawn_app().await;
    let buyer = app.user();

    let reply = app.pay(&buyer, Uuid::now_v7(), "tok_visa").await;

    reply.assert_error(StatusCode::NOT_FOUND);
    assert_eq!(reply.error_message(), "Order not found");
    assert!(app.dev().calls().is_empty());
}

#[tokio::test]
async fn paying_someone_elses_order_is_401_and_never_reaches_the_provider() {
    let app = spawn_app().await;
    let (buyer, stranger) = (app.user(), app.user());
    let order = app.insert_order(&buyer, 1000).await;
    let cancelled = app.insert_order(&buyer, 1000).await;
    sqlx::query("UPDATE orders SET status = 'cancelled', version = 1 WHERE id = $1")
        .bind(cancelled)
        .execute(&app.pool)
        .await
        .unwrap();

    app.pay(&stranger, order, "tok_visa")
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    // Ownership is checked before state: someone else's cancelled order is 401, not 409.
    app.pay(&stranger, cancelled, "tok_visa")
        .await
        .assert_error(StatusCode::UNAUTHORIZED);

    assert!(app.dev().calls().is_empty());
    assert_eq!(app.payment_count().await, 0);
    assert_eq!(app.order_state(order).await, ("created".into(), 0));
    // The owner can still pay.
    app.pay(&buyer, order, "tok_visa").await.created();
}

#[tokio::test]
async fn a_declined_card_is_402_with_the_providers_message_and_the_buyer_may_pay_with_another() {
    let app = spawn_app().await;
    let buyer = app.user();
    let order = app.insert_order(&buyer, 2550).await;

    let declined = app.pay(&buyer, order, "tok_chargeDeclined").await;

    declined.assert_error(StatusCode::PAYMENT_REQUIRED);
    assert_eq!(declined.error_message(), "Your card was declined.");
    let row = app.payment_row(order).await.unwrap();
    assert_eq!(
        (
            row.state.as_str(),
            row.attempt,
            row.charge_id.as_deref(),
            row.failure_message.as_deref()
        ),
        ("declined", 1, None, Some("Your card was declined."))
    );
    assert_eq!(app.order_state(order).await, ("created".into(), 0));
    assert_eq!(app.outbox_count(Subject::PaymentCreated).await, 0);

    // Declined again, then paid with a card that works: each attempt has its own key.
    app.pay(&buyer, order, "tok_chargeDeclined")
        .await
        .assert_error(StatusCode::PAYMENT_REQUIRED);
    let payment_id = app.pay(&buyer, order, "tok_visa").await.created();

    let row = app.payment_row(order).await.unwrap();
    assert_eq!(
        (row.id, row.state.as_str(), row.attempt),
        (payment_id, "succeeded", 3)
    );
    let keys: Vec<String> = app
        .dev()
        .calls()
        .into_iter()
        .map(|c| c.idempotency_key)
        .collect();
    assert_eq!(
        keys,
        [
            order.to_string(),
            format!("{order}:2"),
            format!("{order}:3")
        ]
    );
    let charges = app.dev().charges();
    assert_eq!(charges.len(), 1);
    assert_eq!(
        (charges[0].amount_cents, charges[0].idempotency_key.clone()),
        (2550, format!("{order}:3"))
    );
    assert_eq!(app.order_state(order).await, ("complete".into(), 0));
    assert_eq!(app.wait_for_payment_events(order, 1).await.len(), 1);
}

#[tokio::test]
async fn a_token_the_provider_does_not_know_is_400_on_the_token_field_and_charges_nothing() {
    let app = spawn_app().await;
    let buyer = app.user();
    let order = app.insert_order(&buyer, 1000).await;

    let reply = app.pay(&buyer, order, "tok_unknown").await;

    reply.assert_invalid(&["token"]);
    let row = app.payment_row(order).await.unwrap();
    assert_eq!((row.state.as_str(), row.charge_id), ("failed", None));
    assert!(app.dev().charges().is_empty());
    assert_eq!(app.order_state(order).await, ("created".into(), 0));
    // A good token then works.
    app.pay(&buyer, order, "tok_visa").await.created();
    assert_eq!(app.dev().charges().len(), 1);
}

#[tokio::test]
async fn a_provider_outage_is_503_marks_nothing_paid_and_the_retry_charges_once_with_the_same_key()
{
    let app = spawn_app().await;
    let buyer = app.user();
    let order = app.insert_order(&buyer, 1000).await;
    app.dev().set_unavailable(true);

    let down = app.pay(&buyer, order, "tok_visa").await;

    down.assert_error(StatusCode::SERVICE_UNAVAILABLE);
    let row = app.payment_row(order).await.unwrap();
    assert_eq!((row.state.as_str(), row.charge_id), ("pending", None));
    assert_eq!(app.order_state(order).await, ("created".into(), 0));
    assert_eq!(app.outbox_count(Subject::PaymentCreated).await, 0);

    app.dev().set_unavailable(false);
    let payment_id = app.pay(&buyer, order, "tok_visa").await.created();

    assert_eq!(payment_id, row.id, "the retry completes the same payment");
    let calls = app.dev().calls();
    assert_eq!(calls.len(), 2);
    assert!(
        calls.iter().all(|c| c.idempotency_key == order.to_string()),
        "{calls:?}"
    );
    assert_eq!(app.dev().charges().len(), 1);
    assert_eq!(app.order_state(order).await, ("complete".into(), 0));
    assert_eq!(app.wait_for_payment_events(order, 1).await.len(), 1);
}
