//! A charge is never lost and never repeated across crashes: the attempt is recorded before
//! the provider is called, and whoever retries it does so with the same idempotency key and
//! the same parameters, finding the charge the crashed request made.

use reqwest::StatusCode;
use serde_json::json;
use ticketing_payments::provider::ChargeRequest;
use uuid::Uuid;

use crate::helpers::PaymentReply as _;
use crate::helpers::{TestApp, User, spawn_app};

/// Records a pending first attempt the way a request does before calling the provider, held
/// by a request that has since died (its lease ends `lease_secs` from now; negative: already
/// over). Returns the payment id.
async fn pending_attempt(
    app: &TestApp,
    order: Uuid,
    amount_cents: i64,
    token: &str,
    lease_secs: f64,
) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO payments (id, order_id, state, attempt, provider, amount_cents, currency,
                               token, lease_token, lease_until)
         VALUES ($1, $2, 'pending', 1, 'dev', $3, 'usd', $4, $5, now() + make_interval(secs => $6))",
    )
    .bind(id)
    .bind(order)
    .bind(amount_cents)
    .bind(token)
    .bind(Uuid::new_v4())
    .bind(lease_secs)
    .execute(&app.pool)
    .await
    .expect("insert pending attempt");
    id
}

fn first_attempt(order: Uuid, amount_cents: i64, token: &str) -> ChargeRequest {
    ChargeRequest {
        idempotency_key: order.to_string(),
        order_id: order,
        amount_cents,
        currency: "usd".into(),
        token: token.into(),
    }
}

async fn setup(app: &TestApp) -> (User, Uuid) {
    let buyer = app.user();
    let order = app.insert_order(&buyer, 2500).await;
    (buyer, order)
}

#[tokio::test]
async fn a_charge_made_just_before_a_crash_is_found_by_the_next_request_and_recorded_once() {
    let app = spawn_app().await;
    let (buyer, order) = setup(&app).await;
    // The crashed request recorded its attempt, and the provider charged the card; the
    // process died before writing the outcome.
    let payment_id = pending_attempt(&app, order, 2500, "tok_visa", -1.0).await;
    let charge = app
        .dev()
        .charge_now(&first_attempt(order, 2500, "tok_visa"))
        .expect("the crashed request's charge");

    let reply = app.pay(&buyer, order, "tok_visa").await;

    assert_eq!(reply.created(), payment_id);
    let row = app.payment_row(order).await.unwrap();
    assert_eq!(
        (row.state.as_str(), row.charge_id.as_deref()),
        ("succeeded", Some(charge.id.as_str()))
    );
    assert_eq!(app.dev().charges().len(), 1, "no second charge");
    // The provider was asked what became of the attempt; the charge was not sent again.
    assert_eq!(app.dev().calls().len(), 1);
    assert_eq!(
        app.wait_for_payment_events(order, 1).await,
        [json!({"id": payment_id, "orderId": order, "chargeId": charge.id})]
    );
    assert_eq!(app.order_state(order).await, ("complete".into(), 0));
}

#[tokio::test]
async fn a_request_finding_an_attempt_held_by_a_dead_request_waits_for_its_lease_then_takes_it_over()
 {
    let app = spawn_app().await;
    let (buyer, order) = setup(&app).await;
    // Held by a request that died before calling the provider; its lease runs another second.
    let payment_id = pending_attempt(&app, order, 2500, "tok_visa", 1.0).await;
    let started = std::time::Instant::now();

    let reply = app.pay(&buyer, order, "tok_visa").await;

    assert_eq!(reply.created(), payment_id);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(800),
        "the attempt was taken over while its lease was running ({:?})",
        started.elapsed()
    );
    let calls = app.dev().calls();
    assert_eq!(calls, [first_attempt(order, 2500, "tok_visa")]);
    assert_eq!(app.dev().charges().len(), 1);
    assert_eq!(app.wait_for_payment_events(order, 1).await.len(), 1);
}

#[tokio::test]
async fn a_retry_with_another_token_first_settles_the_unfinished_attempt_with_its_own_parameters() {
    let app = spawn_app().await;
    let (buyer, order) = setup(&app).await;
    // An attempt with a card that is declined died before its answer was recorded.
    pending_attempt(&app, order, 2500, "tok_chargeDeclined", -1.0).await;

    // The buyer retries with another card. The unfinished attempt is settled first, with its
    // own token under its own key (the provider would refuse the key with other
    // parameters): it was declined, and the buyer is told so.
    let settled = app.pay(&buyer, order, "tok_visa").await;
    settled.assert_error(StatusCode::PAYMENT_REQUIRED);
    assert_eq!(
        app.dev().calls(),
        [first_attempt(order, 2500, "tok_chargeDeclined")]
    );

    // The next request is a new attempt with the new card.
    let payment_id = app.pay(&buyer, order, "tok_visa").await.created();
    let row = app.payment_row(order).await.unwrap();
    assert_eq!(
        (row.id, row.attempt, row.state.as_str()),
        (payment_id, 2, "succeeded")
    );
    assert_eq!(app.dev().charges().len(), 1);
    assert_eq!(app.dev().charges()[0].idempotency_key, format!("{order}:2"));
}
