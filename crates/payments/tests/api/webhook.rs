//! `POST /api/payments/webhook`: only events signed with the endpoint's secret, over the exact
//! bytes, within five minutes, are read; `payment_intent.succeeded` completes a payment once
//! however often it arrives.

use reqwest::StatusCode;
use serde_json::json;
use ticketing_events::Subject;
use ticketing_payments::Payments;
use uuid::Uuid;

use crate::helpers::PaymentReply as _;
use crate::helpers::{
    TestApp, User, WEBHOOK_SECRET, intent_event, now, spawn_app, spawn_app_with, stripe_signature,
};

/// An order whose payment is pending: the request's answer from Stripe was lost (its lease
/// has run out), so only the webhook can tell that the money moved.
async fn pending_payment(app: &TestApp) -> (User, Uuid, Uuid) {
    let buyer = app.user();
    let order = app.insert_order(&buyer, 1999).await;
    let payment_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO payments (id, order_id, state, attempt, provider, amount_cents, currency,
                               token, lease_until)
         VALUES ($1, $2, 'pending', 1, 'stripe', 1999, 'usd', 'pm_card_visa', now())",
    )
    .bind(payment_id)
    .bind(order)
    .execute(&app.pool)
    .await
    .unwrap();
    (buyer, order, payment_id)
}

/// Asserts a webhook changed nothing: payment still pending, order live, nothing announced.
async fn assert_untouched(app: &TestApp, order: Uuid) {
    assert_eq!(app.payment_row(order).await.unwrap().state, "pending");
    assert_eq!(app.order_state(order).await.0, "created");
    assert_eq!(app.outbox_count(Subject::PaymentCreated).await, 0);
}

#[tokio::test]
async fn a_signed_payment_intent_succeeded_completes_the_payment_and_announces_it() {
    let app = spawn_app().await;
    let (_, order, payment_id) = pending_payment(&app).await;
    let body = intent_event("evt_ok", "payment_intent.succeeded", "pi_hook", order, 1999);

    let reply = app.post_signed_webhook(&body).await;

    reply.assert_status(StatusCode::OK);
    assert_eq!(reply.json(), json!({"received": true}));
    let row = app.payment_row(order).await.unwrap();
    assert_eq!(
        (row.id, row.state.as_str(), row.charge_id.as_deref()),
        (payment_id, "succeeded", Some("pi_hook"))
    );
    assert_eq!(app.order_state(order).await, ("complete".into(), 0));
    assert_eq!(
        app.wait_for_payment_events(order, 1).await,
        [json!({"id": payment_id, "orderId": order, "chargeId": "pi_hook"})]
    );
}

#[tokio::test]
async fn a_replayed_event_is_acknowledged_and_changes_nothing() {
    let app = spawn_app().await;
    let (buyer, order, _) = pending_payment(&app).await;
    let body = intent_event(
        "evt_twice",
        "payment_intent.succeeded",
        "pi_hook",
        order,
        1999,
    );
    app.post_signed_webhook(&body)
        .await
        .assert_status(StatusCode::OK);

    // Stripe retries, and someone replays the captured request with its original signature.
    let signature = stripe_signature(WEBHOOK_SECRET, now() - 10, &body);
    app.post_signed_webhook(&body)
        .await
        .assert_status(StatusCode::OK);
    app.post_webhook(&body, Some(&signature))
        .await
        .assert_status(StatusCode::OK);

    app.settle().await;
    assert_eq!(app.outbox_count(Subject::PaymentCreated).await, 1);
    assert_eq!(app.payment_events(order).await.len(), 1);
    assert!(app.unmatched_charges().await.is_empty());
    // The order is paid: a request is refused without reaching the provider.
    app.pay(&buyer, order, "tok_visa")
        .await
        .assert_error(StatusCode::CONFLICT);
    assert!(app.dev().calls().is_empty());
}

#[tokio::test]
async fn a_tampered_body_is_400_and_changes_nothing() {
    let app = spawn_app().await;
    let (_, order, _) = pending_payment(&app).await;
    let signed = intent_event("evt_t", "payment_intent.succeeded", "pi_hook", order, 1999);
    let signature = stripe_signature(WEBHOOK_SECRET, now(), &signed);

    for tampered in [
        signed.replace("1999", "1"),
        signed.replace("pi_hook", "pi_evil"),
        format!("{signed} "),
        serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&signed).unwrap())
            .unwrap(),
    ] {
        let reply = app.post_webhook(&tampered, Some(&signature)).await;
        reply.assert_error(StatusCode::BAD_REQUEST);
    }

    assert_untouched(&app, order).await;
}

#[tokio::test]
async fn an_event_signed_with_another_secret_is_400() {
    let app = spawn_app().await;
    let (_, order, _) = pending_payment(&app).await;
    let body = intent_event("evt_w", "payment_intent.succeeded", "pi_hook", order, 1999);

    let reply = app
        .post_webhook(
            &body,
            Some(&stripe_signature("whsec_someone_else", now(), &body)),
        )
        .await;

    reply.assert_error(StatusCode::BAD_REQUEST);
    assert_untouched(&app, order).await;
}

#[tokio::test]
async fn an_event_signed_more_than_five_minutes_ago_is_400() {
    let app = spawn_app().await;
    let (_, order, _) = pending_payment(&app).await;
    let body = intent_event(
        "evt_old",
        "payment_intent.succeeded",
        "pi_hook",
        order,
        1999,
    );

    for timestamp in [now() - 301, now() - 3600, now() + 3600] {
        let reply = app
            .post_webhook(
                &body,
                Some(&stripe_signature(WEBHOOK_SECRET, timestamp, &body)),
            )
            .await;
        reply.assert_error(StatusCode::BAD_REQUEST);
        assert!(
            reply.error_message().contains("tolerance"),
            "{}",
            reply.text
        );
    }
    assert_untouched(&app, order).await;

    // Within the tolerance it is accepted.
    app.post_webhook(
        &body,
        Some(&stripe_signature(WEBHOOK_SECRET, now() - 240, &body)),
    )
    .await
    .assert_status(StatusCode::OK);
    assert_eq!(app.payment_row(order).await.unwrap().state, "succeeded");
}

#[tokio::test]
async fn an_unsigned_or_malformed_signature_is_400() {
    let app = spawn_app().await;
    let (_, order, _) = pending_payment(&app).await;
    let body = intent_event("evt_u", "payment_intent.succeeded", "pi_hook", order, 1999);
    let good = stripe_signature(WEBHOOK_SECRET, now(), &body);
    let v1 = good.split_once("v1=").unwrap().1.to_owned();

    app.post_webhook(&body, None)
        .await
        .assert_error(StatusCode::BAD_REQUEST);
    for header in [
        String::new(),
        format!("v1={v1}"),
        format!("t=yesterday,v1={v1}"),
        format!("t={}", now()),
        format!("t={},v0={v1}", now()),
        format!("t={},v1=zz{}", now(), &v1[2..]),
    ] {
        app.post_webhook(&body, Some(&header))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
    }
    assert_untouched(&app, order).await;
}

#[tokio::test]
async fn any_one_matching_v1_signature_is_enough() {
    let app = spawn_app().await;
    let (_, order, _) = pending_payment(&app).await;
    let body = intent_event(
        "evt_roll",
        "payment_intent.succeeded",
        "pi_hook",
        order,
        1999,
    );
    let t = now();
    let good = stripe_signature(WEBHOOK_SECRET, t, &body);
    let old_secret = stripe_signature("whsec_previous", t, &body);
    let header = format!(
        "{},{}",
        old_secret,
        good.split_once(',').unwrap().1 // "v1=<good>"
    );

    app.post_webhook(&body, Some(&header))
        .await
        .assert_status(StatusCode::OK);

    assert_eq!(app.payment_row(order).await.unwrap().state, "succeeded");
}

#[tokio::test]
async fn other_event_types_are_acknowledged_and_change_nothing() {
    let app = spawn_app().await;
    let (_, order, _) = pending_payment(&app).await;
    let body = json!({"id": "evt_x", "object": "event", "type": "charge.refunded",
        "data": {"object": {"id": "ch_1", "metadata": {"order_id": order}}}})
    .to_string();

    let reply = app.post_signed_webhook(&body).await;

    reply.assert_status(StatusCode::OK);
    assert_eq!(reply.json(), json!({"received": true}));
    assert_untouched(&app, order).await;
}

#[tokio::test]
async fn a_signed_body_that_is_not_an_event_is_400() {
    let app = spawn_app().await;
    for body in ["not json", "{\"id\": \"evt_1\"}"] {
        app.post_signed_webhook(body)
            .await
            .assert_error(StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn a_succeeded_intent_for_an_order_without_a_payment_is_kept_as_an_unmatched_charge() {
    let app = spawn_app().await;
    let buyer = app.user();
    let order = app.insert_order(&buyer, 1999).await;
    let body = intent_event(
        "evt_n",
        "payment_intent.succeeded",
        "pi_orphan",
        order,
        1999,
    );

    app.post_signed_webhook(&body)
        .await
        .assert_status(StatusCode::OK);
    app.post_signed_webhook(&body)
        .await
        .assert_status(StatusCode::OK);

    assert_eq!(
        app.unmatched_charges().await,
        [(
            "pi_orphan".to_string(),
            Some(order),
            "succeeded intent for an order without a payment".to_string()
        )]
    );
    assert_eq!(app.outbox_count(Subject::PaymentCreated).await, 0);
}

#[tokio::test]
async fn a_second_succeeded_intent_for_a_paid_order_is_kept_for_a_refund_and_announces_nothing() {
    let app = spawn_app().await;
    let buyer = app.user();
    let order = app.insert_order(&buyer, 1999).await;
    let payment_id = app.pay(&buyer, order, "tok_visa").await.created();
    let charge_id = app.payment_row(order).await.unwrap().charge_id.unwrap();
    let body = intent_event(
        "evt_d",
        "payment_intent.succeeded",
        "pi_second",
        order,
        1999,
    );

    app.post_signed_webhook(&body)
        .await
        .assert_status(StatusCode::OK);

    let row = app.payment_row(order).await.unwrap();
    assert_eq!((row.id, row.charge_id), (payment_id, Some(charge_id)));
    assert_eq!(
        app.unmatched_charges().await,
        [(
            "pi_second".to_string(),
            Some(order),
            "second charge for an order already paid".to_string()
        )]
    );
    assert_eq!(app.outbox_count(Subject::PaymentCreated).await, 1);
}

#[tokio::test]
async fn without_a_webhook_secret_every_event_is_refused_with_400() {
    let app = spawn_app_with(|payments| Payments {
        webhook_secret: None,
        ..payments
    })
    .await;
    let (_, order, _) = pending_payment(&app).await;
    let body = intent_event("evt_s", "payment_intent.succeeded", "pi_hook", order, 1999);

    let reply = app.post_signed_webhook(&body).await;

    reply.assert_error(StatusCode::BAD_REQUEST);
    assert!(
        reply.error_message().contains("no webhook secret"),
        "{}",
        reply.text
    );
    assert_untouched(&app, order).await;
}

/// A `$250` order whose one attempt was declined: nothing is owed, nothing is charged.
async fn declined_payment(app: &TestApp) -> Uuid {
    let buyer = app.user();
    let order = app.insert_order(&buyer, 25_000).await;
    app.pay(&buyer, order, "tok_chargeDeclined")
        .await
        .assert_status(StatusCode::PAYMENT_REQUIRED);
    assert_eq!(app.payment_row(order).await.unwrap().state, "declined");
    order
}

/// `intent_event` with some of its fields changed (`/data/object/amount`, `/livemode`...).
fn intent_event_with(order: Uuid, changes: &[(&str, serde_json::Value)]) -> String {
    let body = intent_event(
        "evt_forged",
        "payment_intent.succeeded",
        "pi_forged",
        order,
        25_000,
    );
    let mut event: serde_json::Value = serde_json::from_str(&body).unwrap();
    for (pointer, value) in changes {
        *event.pointer_mut(pointer).expect("a field of the event") = value.clone();
    }
    serde_json::to_string_pretty(&event).unwrap()
}

#[tokio::test]
async fn a_signed_one_cent_webhook_after_a_declined_attempt_completes_nothing() {
    // The attack: one declined attempt records the order's payment; a webhook signed with the
    // endpoint's secret (an empty one, before start-up refused it) says 1 cent succeeded.
    let app = spawn_app().await;
    let order = declined_payment(&app).await;
    let body = intent_event_with(
        order,
        &[
            ("/data/object/amount", json!(1)),
            ("/data/object/amount_received", json!(1)),
        ],
    );

    app.post_signed_webhook(&body)
        .await
        .assert_status(StatusCode::OK);

    assert_eq!(
        app.order_state(order).await.0,
        "created",
        "the order is not paid"
    );
    assert_eq!(app.payment_row(order).await.unwrap().state, "declined");
    assert_eq!(app.outbox_count(Subject::PaymentCreated).await, 0);
    let unmatched = app.unmatched_charges().await;
    assert_eq!(unmatched.len(), 1, "{unmatched:?}");
    assert_eq!(
        (unmatched[0].0.as_str(), unmatched[0].1),
        ("pi_forged", Some(order))
    );
    assert!(unmatched[0].2.contains("amount"), "{unmatched:?}");
    let metrics = app.get("/metrics").await.text;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("payments_webhook_mismatches_total")
                && l.contains("field=\"amount\"")),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_webhook_in_another_currency_or_mode_or_saying_neither_completes_nothing() {
    for (field, changes) in [
        ("currency", vec![("/data/object/currency", json!("eur"))]),
        ("livemode", vec![("/livemode", json!(true))]),
        ("livemode", vec![("/livemode", serde_json::Value::Null)]),
        (
            "amount",
            vec![("/data/object/amount", serde_json::Value::Null)],
        ),
    ] {
        let app = spawn_app().await;
        let order = declined_payment(&app).await;

        app.post_signed_webhook(&intent_event_with(order, &changes))
            .await
            .assert_status(StatusCode::OK);

        assert_eq!(app.order_state(order).await.0, "created", "{changes:?}");
        assert_eq!(app.outbox_count(Subject::PaymentCreated).await, 0);
        let unmatched = app.unmatched_charges().await;
        assert!(
            unmatched.len() == 1 && unmatched[0].2.contains(field),
            "{changes:?}: {unmatched:?}"
        );
    }
}

#[tokio::test]
async fn the_matching_webhook_for_a_declined_attempt_still_completes_it() {
    // The buyer confirmed the same intent again with another card (Stripe.js): the money moved.
    let app = spawn_app().await;
    let order = declined_payment(&app).await;

    app.post_signed_webhook(&intent_event_with(order, &[]))
        .await
        .assert_status(StatusCode::OK);

    assert_eq!(app.order_state(order).await.0, "complete");
    assert!(app.unmatched_charges().await.is_empty());
}
