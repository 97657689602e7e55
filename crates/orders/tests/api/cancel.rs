//! `DELETE /api/orders/:id`: the owner cancels a live order once; a paid order stays paid;
//! nobody else can touch it.

use reqwest::StatusCode;
use serde_json::json;
use ticketing_events::{OrderCancelled, Subject};
use uuid::Uuid;

use crate::helpers::OrderReply as _;
use crate::helpers::{payment_created, spawn_app};

#[tokio::test]
async fn the_owner_cancels_a_live_order_with_204_and_it_is_announced_once() {
    let app = spawn_app().await;
    let buyer = app.user();
    let ticket = app.insert_ticket("Concert", 1000).await;
    let order = app.create_order(&buyer, ticket).await;

    let reply = app.cancel(Some(&buyer), &order.id.to_string()).await;

    reply.assert_status(StatusCode::NO_CONTENT);
    assert_eq!(reply.text, "");
    assert_eq!(app.order_state(order.id).await, ("cancelled".into(), 1));
    let shown = app.show(Some(&buyer), &order.id.to_string()).await.order();
    assert_eq!(
        (shown.status.as_str(), shown.version, shown.expires_at()),
        ("cancelled", 1, order.expires_at())
    );
    let events = app
        .wait_for_order_events::<OrderCancelled>(order.id, 1)
        .await;
    assert_eq!(
        events,
        [json!({"id": order.id, "version": 1, "ticket": {"id": ticket}})]
    );

    // Cancelling again succeeds, changes nothing and announces nothing.
    app.cancel_order(&buyer, order.id).await;
    app.settle().await;
    assert_eq!(app.order_state(order.id).await, ("cancelled".into(), 1));
    assert_eq!(app.outbox_count(Subject::OrderCancelled).await, 1);
    assert_eq!(app.order_events::<OrderCancelled>(order.id).await.len(), 1);
}

#[tokio::test]
async fn a_paid_order_cannot_be_cancelled_and_stays_complete() {
    let app = spawn_app().await;
    let buyer = app.user();
    let order = app
        .create_order(&buyer, app.insert_ticket("Concert", 1000).await)
        .await;
    app.publish(&payment_created(order.id)).await;
    app.wait_for_order(order.id, "paid", |row| row.status == "complete")
        .await;

    let reply = app.cancel(Some(&buyer), &order.id.to_string()).await;

    reply.assert_error(StatusCode::CONFLICT);
    assert_eq!(app.order_state(order.id).await, ("complete".into(), 1));
    app.settle().await;
    assert_eq!(app.outbox_count(Subject::OrderCancelled).await, 0);
    assert!(
        app.order_events::<OrderCancelled>(order.id)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn someone_elses_order_is_401_an_unknown_one_404_and_neither_changes_anything() {
    let app = spawn_app().await;
    let (buyer, other) = (app.user(), app.user());
    let order = app
        .create_order(&buyer, app.insert_ticket("Concert", 1000).await)
        .await;

    app.cancel(Some(&other), &order.id.to_string())
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    app.cancel(Some(&other), &Uuid::now_v7().to_string())
        .await
        .assert_error(StatusCode::NOT_FOUND);

    assert_eq!(app.order_state(order.id).await, ("created".into(), 0));
    assert_eq!(app.outbox_count(Subject::OrderCancelled).await, 0);
    // The owner still can.
    app.cancel_order(&buyer, order.id).await;
    assert_eq!(app.order_state(order.id).await, ("cancelled".into(), 1));
}

#[tokio::test]
async fn someone_else_cannot_cancel_an_order_that_is_already_cancelled_or_paid_either() {
    let app = spawn_app().await;
    let (buyer, other) = (app.user(), app.user());
    let cancelled = app
        .create_order(&buyer, app.insert_ticket("One", 1000).await)
        .await;
    app.cancel_order(&buyer, cancelled.id).await;
    let paid = app
        .create_order(&buyer, app.insert_ticket("Two", 1000).await)
        .await;
    app.publish(&payment_created(paid.id)).await;
    app.wait_for_order(paid.id, "paid", |row| row.status == "complete")
        .await;

    // Ownership is checked before state.
    for id in [cancelled.id, paid.id] {
        app.cancel(Some(&other), &id.to_string())
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.order_state(cancelled.id).await, ("cancelled".into(), 1));
    assert_eq!(app.order_state(paid.id).await, ("complete".into(), 1));
}
