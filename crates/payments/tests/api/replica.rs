//! The order replica follows `order.created`, `order.completed` and `order.cancelled` in
//! version order:
//! duplicates and stale events change nothing, early ones wait, and a cancelled order can
//! never be charged.

use reqwest::StatusCode;
use serde_json::json;
use ticketing_events::Subject;
use uuid::Uuid;

use crate::helpers::PaymentReply as _;
use crate::helpers::{order_cancelled, order_completed, order_created, spawn_app};

#[tokio::test]
async fn an_order_announced_by_order_created_can_be_paid_once_the_replica_has_it() {
    let app = spawn_app().await;
    let buyer = app.user();
    let id = Uuid::now_v7();
    // Payments learns orders from events: before that, the order is unknown.
    app.pay(&buyer, id, "tok_visa")
        .await
        .assert_error(StatusCode::NOT_FOUND);

    app.publish(&order_created(id, buyer.id, 1999)).await;

    let row = app.wait_for_order(id, "learnt", |_| true).await;
    assert_eq!(
        (
            row.user_id,
            row.price_cents,
            row.status.as_str(),
            row.version
        ),
        (buyer.id, 1999, "created", 0)
    );
    app.pay(&buyer, id, "tok_visa").await.created();
    assert_eq!(app.dev().charges()[0].amount_cents, 1999);
}

#[tokio::test]
async fn a_duplicate_order_created_changes_nothing() {
    let app = spawn_app().await;
    let (buyer, other) = (app.user(), app.user());
    let id = Uuid::now_v7();
    let created = order_created(id, buyer.id, 1000);
    app.publish(&created).await;
    app.wait_for_order(id, "learnt", |_| true).await;

    // The same envelope again, and the same order under a new event id with other values.
    app.publish(&created).await;
    app.publish(&order_created(id, other.id, 1)).await;
    app.settle().await;

    let row = app.order_row(id).await.unwrap();
    assert_eq!(
        (
            row.user_id,
            row.price_cents,
            row.status.as_str(),
            row.version
        ),
        (buyer.id, 1000, "created", 0)
    );
    app.pay(&other, id, "tok_visa")
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn paying_an_order_after_it_was_cancelled_is_409_and_charges_nothing() {
    let app = spawn_app().await;
    let buyer = app.user();
    let order = app.seed_order(&buyer, 1000).await;

    // The order expired (or its buyer cancelled it) and orders said so.
    app.publish(&order_cancelled(order, 1)).await;
    app.wait_for_order(order, "cancelled", |row| row.status == "cancelled")
        .await;
    let reply = app.pay(&buyer, order, "tok_visa").await;

    reply.assert_error(StatusCode::CONFLICT);
    assert_eq!(reply.error_message(), "The order is cancelled");
    assert!(app.dev().calls().is_empty(), "the provider was called");
    assert_eq!(app.payment_row(order).await, None);
    assert_eq!(app.outbox_count(Subject::PaymentCreated).await, 0);
    assert_eq!(app.order_state(order).await, ("cancelled".into(), 1));
}

#[tokio::test]
async fn a_cancellation_that_overtakes_the_creation_waits_for_it() {
    let app = spawn_app().await;
    let buyer = app.user();
    let id = Uuid::now_v7();

    app.publish(&order_cancelled(id, 1)).await;
    app.wait_until_redelivered(Subject::OrderCancelled).await;
    assert_eq!(app.order_row(id).await, None);
    app.publish(&order_created(id, buyer.id, 1000)).await;

    let row = app
        .wait_for_order(id, "cancelled", |row| row.version == 1)
        .await;
    assert_eq!(row.status, "cancelled");
    app.pay(&buyer, id, "tok_visa")
        .await
        .assert_error(StatusCode::CONFLICT);
    assert!(app.dev().calls().is_empty());
}

#[tokio::test]
async fn duplicate_stale_and_early_cancellations_are_handled_in_version_order() {
    let app = spawn_app().await;
    let buyer = app.user();
    let order = app.seed_order(&buyer, 1000).await;
    let cancelled = order_cancelled(order, 1);
    app.publish(&cancelled).await;
    app.wait_for_order(order, "cancelled", |row| row.version == 1)
        .await;

    // A redelivered version 1, version 1 under a new event id, and an ancient version 0.
    app.publish(&cancelled).await;
    app.publish(&order_cancelled(order, 1)).await;
    app.publish(&order_cancelled(order, 0)).await;
    app.settle().await;

    assert_eq!(app.order_state(order).await, ("cancelled".into(), 1));
    // Dropped means acknowledged, not parked.
    assert!(app.consumer_drained(Subject::OrderCancelled).await);
}

#[tokio::test]
async fn a_cancellation_arriving_after_a_payment_refunds_it_and_refuses_new_ones() {
    // The order expired in the orders service while the buyer's charge went through: orders
    // keeps it cancelled; here the charge is refunded automatically (once, however often the
    // cancellation comes), announced, and nothing more can be charged.
    let app = spawn_app().await;
    let buyer = app.user();
    let order = app.seed_order(&buyer, 1000).await;
    let payment_id = app.pay(&buyer, order, "tok_visa").await.created();
    let cancelled = order_cancelled(order, 1);

    app.publish(&cancelled).await;
    app.publish(&cancelled).await;
    app.wait_for_payment(order, "refunded", |row| row.state == "refunded")
        .await;

    let row = app.payment_row(order).await.unwrap();
    assert_eq!((row.id, row.state.as_str()), (payment_id, "refunded"));
    assert_eq!(app.order_state(order).await, ("cancelled".into(), 1));
    let (refunds, calls) = app.dev().refunds();
    assert_eq!((refunds.len(), calls), (1, 1), "one refund, asked once");
    assert_eq!(refunds[0].0.charge_id, row.charge_id.unwrap());
    assert_eq!(refunds[0].0.amount_cents, 1000);
    let announced = app.wait_for_refund_events(order, 1).await;
    assert_eq!(announced[0]["refundId"], json!(refunds[0].1.id));
    app.pay(&buyer, order, "tok_visa")
        .await
        .assert_error(StatusCode::CONFLICT);
    assert_eq!(app.dev().calls().len(), 1);
}

#[tokio::test]
async fn a_paid_order_cancelled_after_its_completion_is_refunded_once() {
    // The ticket was withdrawn in the instant it was ordered: orders completed the order
    // (version 1, `order.completed`), then cancelled it (version 2). The cancellation waits
    // for the completion if it comes first, then the charge is refunded.
    let app = spawn_app().await;
    let buyer = app.user();
    let order = app.seed_order(&buyer, 1000).await;
    app.pay(&buyer, order, "tok_visa").await.created();

    app.publish(&order_cancelled(order, 2)).await;
    app.wait_until_redelivered(Subject::OrderCancelled).await;
    assert_eq!(app.payment_row(order).await.unwrap().state, "succeeded");
    let completed = order_completed(order, 1);
    app.publish(&completed).await;
    app.publish(&completed).await;

    app.wait_for_payment(order, "refunded", |row| row.state == "refunded")
        .await;
    assert_eq!(app.order_state(order).await, ("cancelled".into(), 2));
    let (refunds, calls) = app.dev().refunds();
    assert_eq!((refunds.len(), calls), (1, 1), "one refund, asked once");
    app.wait_for_refund_events(order, 1).await;
}
