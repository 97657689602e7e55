//! `POST /api/payments/refunds` (operators) and `GET /api/payments?orderId=` (the receipt):
//! who may, once only under any number of simultaneous requests, what the provider's
//! refusal or silence answers, and what is announced.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use ticketing_events::Subject;
use uuid::Uuid;

use crate::helpers::PaymentReply as _;
use crate::helpers::{TestApp, User, spawn_app, spawn_app_with_slow_provider};

/// A buyer with a paid order of `price_cents`.
async fn paid_order(app: &TestApp, price_cents: i64) -> (User, Uuid, Uuid) {
    let buyer = app.user();
    let order = app.seed_order(&buyer, price_cents).await;
    let payment = app.pay(&buyer, order, "tok_visa").await.created();
    (buyer, order, payment)
}

#[tokio::test]
async fn only_operators_refund_anonymous_is_401_and_a_buyer_403_before_anything_else() {
    let app = spawn_app().await;
    let (buyer, order, _) = paid_order(&app, 1999).await;

    app.refund(None, order)
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    // Even their own order, and even with a body that is not valid.
    app.refund(Some(&buyer), order)
        .await
        .assert_error(StatusCode::FORBIDDEN);
    app.send_json(
        reqwest::Method::POST,
        "/api/payments/refunds",
        Some(&buyer),
        &json!({}),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN);

    assert_eq!(app.dev().refunds().1, 0, "the provider was never asked");
    assert_eq!(app.payment_row(order).await.unwrap().state, "succeeded");
}

#[tokio::test]
async fn an_operator_refunds_a_complete_order_once_and_it_is_announced() {
    let app = spawn_app().await;
    let (_, order, payment) = paid_order(&app, 1999).await;
    let operator = app.operator();

    let reply = app.refund(Some(&operator), order).await;

    reply.assert_status(StatusCode::CREATED);
    let body = reply.json();
    assert_eq!(body["orderId"], json!(order));
    assert_eq!(body["amount"], json!(19.99));
    let refund_id: Uuid = body["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        app.payment_row(order).await.unwrap().state,
        "refunded",
        "the payment is refunded"
    );
    assert_eq!(app.order_state(order).await.0, "refunded");
    let (made, calls) = app.dev().refunds();
    assert_eq!((made.len(), calls), (1, 1));
    assert_eq!(made[0].0.amount_cents, 1999);
    assert_eq!(made[0].0.idempotency_key, format!("refund-{payment}"));
    assert_eq!(
        app.wait_for_refund_events(order, 1).await,
        [json!({"id": refund_id, "orderId": order, "refundId": made[0].1.id})]
    );
    let row = app.refund_row(order).await.unwrap();
    assert_eq!((row.0.as_str(), row.1.as_str()), ("succeeded", "operator"));
    let requested_by: Option<Uuid> =
        sqlx::query_scalar("SELECT requested_by FROM refunds WHERE order_id = $1")
            .bind(order)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(requested_by, Some(operator.id), "who asked is recorded");
    let status = app
        .send(
            reqwest::Method::GET,
            "/api/payments/admin/status",
            Some(&operator),
            None,
        )
        .await
        .json();
    assert_eq!(status["actions"][0]["action"], "refund");
    assert_eq!(status["actions"][0]["target"], json!(order.to_string()));
    assert_eq!(status["actions"][0]["operatorId"], json!(operator.id));

    // Twice is 409, and the provider is not asked again.
    app.refund(Some(&operator), order)
        .await
        .assert_error(StatusCode::CONFLICT);
    assert_eq!(app.dev().refunds().1, 1);
}

#[tokio::test]
async fn ten_simultaneous_refunds_make_one_provider_refund() {
    let app = spawn_app_with_slow_provider(std::time::Duration::from_millis(300)).await;
    let (_, order, _) = paid_order(&app, 5000).await;
    let operator = app.operator();

    let replies = join_all((0..10).map(|_| app.refund(Some(&operator), order))).await;

    let statuses: Vec<StatusCode> = replies.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    let (made, calls) = app.dev().refunds();
    assert_eq!((made.len(), calls), (1, 1));
    assert_eq!(app.wait_for_refund_events(order, 1).await.len(), 1);
    assert_eq!(app.outbox_count(Subject::PaymentRefunded).await, 1);
}

#[tokio::test]
async fn refunding_an_unknown_unpaid_or_malformed_order_is_refused_without_the_provider() {
    let app = spawn_app().await;
    let operator = app.operator();
    let buyer = app.user();
    let unpaid = app.seed_order(&buyer, 1000).await;

    app.refund(Some(&operator), Uuid::now_v7())
        .await
        .assert_error(StatusCode::NOT_FOUND);
    app.refund(Some(&operator), unpaid)
        .await
        .assert_error(StatusCode::CONFLICT);
    let malformed = app
        .send_json(
            reqwest::Method::POST,
            "/api/payments/refunds",
            Some(&operator),
            &json!({"orderId": "nope"}),
        )
        .await;
    malformed.assert_error(StatusCode::BAD_REQUEST);
    assert_eq!(malformed.json()["errors"][0]["field"], "orderId");
    assert_eq!(app.dev().refunds().1, 0);
}

#[tokio::test]
async fn a_refund_the_provider_refuses_is_409_with_its_message_and_kept_for_a_person() {
    let app = spawn_app().await;
    let (_, order, _) = paid_order(&app, 1000).await;
    let operator = app.operator();
    app.dev().set_refunds_refused(true);

    let refused = app.refund(Some(&operator), order).await;

    refused.assert_error(StatusCode::CONFLICT);
    assert!(
        refused.error_message().contains("disputed"),
        "{}",
        refused.text
    );
    let row = app.refund_row(order).await.unwrap();
    assert_eq!(row.0, "failed");
    assert!(row.3.unwrap().contains("disputed"));
    assert_eq!(app.payment_row(order).await.unwrap().state, "succeeded");
    assert_eq!(app.order_state(order).await.0, "complete");
    assert_eq!(app.outbox_count(Subject::PaymentRefunded).await, 0);
    // The operators' attention list shows it (and only to operators).
    let attention = app
        .send(
            reqwest::Method::GET,
            "/api/payments/admin/attention",
            Some(&operator),
            None,
        )
        .await;
    attention.assert_status(StatusCode::OK);
    let refused_refunds = attention.json()["refusedRefunds"].clone();
    assert_eq!(
        refused_refunds.as_array().unwrap().len(),
        1,
        "{refused_refunds}"
    );
    assert_eq!(refused_refunds[0]["orderId"], json!(order));
    assert_eq!(refused_refunds[0]["amount"], json!(10));
    assert_eq!(refused_refunds[0]["requestedBy"], json!(operator.id));
    assert!(
        refused_refunds[0]["message"]
            .as_str()
            .unwrap()
            .contains("disputed")
    );
    for (user, status) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some(app.user()), StatusCode::FORBIDDEN),
    ] {
        app.send(
            reqwest::Method::GET,
            "/api/payments/admin/attention",
            user.as_ref(),
            None,
        )
        .await
        .assert_error(status);
    }

    // An operator may try again once the provider allows it: a new attempt, a new key.
    app.dev().set_refunds_refused(false);
    app.refund(Some(&operator), order)
        .await
        .assert_status(StatusCode::CREATED);
    let row = app.refund_row(order).await.unwrap();
    assert_eq!((row.0.as_str(), row.2), ("succeeded", 2));
    let attention = app
        .send(
            reqwest::Method::GET,
            "/api/payments/admin/attention",
            Some(&operator),
            None,
        )
        .await
        .json();
    assert_eq!(attention["refusedRefunds"], json!([]));
}

#[tokio::test]
async fn a_provider_that_does_not_answer_is_503_and_asking_again_refunds_once() {
    let app = spawn_app().await;
    let (_, order, payment) = paid_order(&app, 1000).await;
    let operator = app.operator();
    app.dev().set_unavailable(true);

    app.refund(Some(&operator), order)
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(app.refund_row(order).await.unwrap().0, "pending");
    app.dev().set_unavailable(false);

    app.refund(Some(&operator), order)
        .await
        .assert_status(StatusCode::CREATED);
    let (made, _) = app.dev().refunds();
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].0.idempotency_key, format!("refund-{payment}"));
}

#[tokio::test]
async fn the_receipt_shows_the_payment_to_its_owner_and_operators_only() {
    let app = spawn_app().await;
    let (buyer, order, payment) = paid_order(&app, 2550).await;

    let reply = app.payments_of(Some(&buyer), &order.to_string()).await;

    reply.assert_status(StatusCode::OK);
    let records = reply.json();
    assert_eq!(records.as_array().unwrap().len(), 1);
    let record = &records[0];
    assert_eq!(record["id"], json!(payment));
    assert_eq!(record["orderId"], json!(order));
    assert_eq!(record["amount"], json!(25.5));
    assert_eq!(record["status"], "succeeded");
    assert_eq!(record["cardBrand"], "visa");
    assert_eq!(record["cardLast4"], "4242");
    assert!(record["createdAt"].as_str().unwrap().ends_with('Z'));

    let operator = app.operator();
    assert_eq!(
        app.payments_of(Some(&operator), &order.to_string())
            .await
            .json(),
        records
    );
    app.payments_of(Some(&app.user()), &order.to_string())
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    app.payments_of(None, &order.to_string())
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    app.payments_of(Some(&buyer), &Uuid::now_v7().to_string())
        .await
        .assert_error(StatusCode::NOT_FOUND);
    app.payments_of(Some(&buyer), "nope")
        .await
        .assert_error(StatusCode::BAD_REQUEST);

    app.refund(Some(&operator), order)
        .await
        .assert_status(StatusCode::CREATED);
    assert_eq!(
        app.payments_of(Some(&buyer), &order.to_string())
            .await
            .json()[0]["status"],
        "refunded"
    );
    // A declined attempt shows as declined, without a card.
    let declined_order = app.seed_order(&buyer, 1000).await;
    app.pay(&buyer, declined_order, "tok_chargeDeclined")
        .await
        .assert_error(StatusCode::PAYMENT_REQUIRED);
    let declined = app
        .payments_of(Some(&buyer), &declined_order.to_string())
        .await
        .json();
    assert_eq!(declined[0]["status"], "declined");
    assert_eq!(declined[0]["cardBrand"], json!(null));
}

#[tokio::test]
async fn stripes_refund_webhooks_record_a_failure_and_settle_a_refund_whose_answer_was_lost() {
    let app = spawn_app().await;
    let operator = app.operator();
    // A refund that went through, then failed at the bank (refund.updated → failed).
    let (_, failed_order, _) = paid_order(&app, 1000).await;
    app.refund(Some(&operator), failed_order)
        .await
        .assert_status(StatusCode::CREATED);
    let intent = app
        .payment_row(failed_order)
        .await
        .unwrap()
        .charge_id
        .unwrap();
    let failed = json!({"id": "evt_rf", "object": "event", "type": "refund.updated",
        "livemode": false, "data": {"object": {"id": "re_x", "object": "refund",
        "payment_intent": intent, "status": "failed", "failure_reason": "expired_or_canceled_card"}}});
    app.post_signed_webhook(&failed.to_string())
        .await
        .assert_status(StatusCode::OK);
    let row = app.refund_row(failed_order).await.unwrap();
    assert_eq!(row.0, "failed");
    assert_eq!(row.3.as_deref(), Some("expired_or_canceled_card"));

    // A refund whose answer never came: Stripe's charge.refunded records it.
    let (_, lost_order, _) = paid_order(&app, 2000).await;
    app.dev().set_unavailable(true);
    app.refund(Some(&operator), lost_order)
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE);
    app.dev().set_unavailable(false);
    let intent = app
        .payment_row(lost_order)
        .await
        .unwrap()
        .charge_id
        .unwrap();
    let refunded = json!({"id": "evt_cr", "object": "event", "type": "charge.refunded",
        "livemode": false, "data": {"object": {"id": "ch_x", "object": "charge",
        "payment_intent": intent, "refunded": true,
        "refunds": {"data": [{"id": "re_from_stripe", "status": "succeeded"}]}}}});
    for _ in 0..2 {
        app.post_signed_webhook(&refunded.to_string())
            .await
            .assert_status(StatusCode::OK);
    }
    assert_eq!(app.refund_row(lost_order).await.unwrap().0, "succeeded");
    assert_eq!(app.order_state(lost_order).await.0, "refunded");
    let announced = app.wait_for_refund_events(lost_order, 1).await;
    assert_eq!(announced.len(), 1);
    assert_eq!(announced[0]["refundId"], "re_from_stripe");
}
