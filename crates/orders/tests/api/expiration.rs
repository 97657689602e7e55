//! `expiration.complete` cancels an order only while it is still live, announces that once,
//! and never touches an order (or a ticket) that has moved on.

use std::time::Duration;

use serde_json::json;
use ticketing_events::{OrderCancelled, Subject};
use ticketing_orders::Orders;
use uuid::Uuid;

use crate::helpers::OrderReply as _;
use crate::helpers::{expiration_complete, payment_created, spawn_app, spawn_app_with};

#[tokio::test]
async fn expiration_complete_cancels_a_live_order_and_announces_it_once() {
    let app = spawn_app_with(|orders| Orders {
        window: Duration::from_secs(1),
        ..orders
    })
    .await;
    let buyer = app.user();
    let ticket = app.seed_ticket("Concert", 1000).await;
    let order = app.create_order(&buyer, ticket).await;
    let expired = expiration_complete(order.id);

    app.publish(&expired).await;

    app.wait_for_order(order.id, "cancelled", |row| row.status == "cancelled")
        .await;
    let events = app
        .wait_for_order_events::<OrderCancelled>(order.id, 1)
        .await;
    assert_eq!(
        events,
        [json!({"id": order.id, "version": 1, "ticket": {"id": ticket}})]
    );
    let shown = app.show(Some(&buyer), &order.id.to_string()).await.order();
    assert_eq!((shown.status.as_str(), shown.version), ("cancelled", 1));

    // A redelivery and a second job for the same order change nothing.
    app.publish(&expired).await;
    app.publish(&expiration_complete(order.id)).await;
    app.settle().await;
    assert_eq!(app.order_state(order.id).await, ("cancelled".into(), 1));
    assert_eq!(app.outbox_count(Subject::OrderCancelled).await, 1);
    assert_eq!(app.order_events::<OrderCancelled>(order.id).await.len(), 1);
    // The ticket is free again.
    app.create_order(&app.user(), ticket).await;
}

#[tokio::test]
async fn the_expiry_of_a_paid_order_changes_nothing_and_announces_nothing() {
    let app = spawn_app().await;
    let buyer = app.user();
    let ticket = app.insert_ticket("Concert", 1000).await;
    let order = app.create_order(&buyer, ticket).await;
    app.publish(&payment_created(order.id)).await;
    app.wait_for_order(order.id, "paid", |row| row.status == "complete")
        .await;

    app.publish(&expiration_complete(order.id)).await;
    app.settle().await;

    assert_eq!(app.order_state(order.id).await, ("complete".into(), 1));
    assert_eq!(app.outbox_count(Subject::OrderCancelled).await, 0);
    assert!(
        app.order_events::<OrderCancelled>(order.id)
            .await
            .is_empty()
    );
    app.order(&app.user(), ticket)
        .await
        .assert_error(reqwest::StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_late_expiry_of_a_cancelled_order_leaves_the_tickets_new_order_alone() {
    let app = spawn_app().await;
    let (first_buyer, second_buyer) = (app.user(), app.user());
    let ticket = app.insert_ticket("Concert", 1000).await;
    let first = app.create_order(&first_buyer, ticket).await;
    app.cancel_order(&first_buyer, first.id).await;
    let second = app.create_order(&second_buyer, ticket).await;

    // The first order's job was not removed when it was cancelled; it fires now.
    app.publish(&expiration_complete(first.id)).await;
    app.settle().await;

    assert_eq!(app.order_state(first.id).await, ("cancelled".into(), 1));
    assert_eq!(app.order_state(second.id).await, ("created".into(), 0));
    assert_eq!(app.outbox_count(Subject::OrderCancelled).await, 1);
    assert_eq!(app.order_events::<OrderCancelled>(first.id).await.len(), 1);
    assert!(
        app.order_events::<OrderCancelled>(second.id)
            .await
            .is_empty()
    );
    app.order(&app.user(), ticket)
        .await
        .assert_error(reqwest::StatusCode::CONFLICT);
}

#[tokio::test]
async fn an_expiry_for_an_unknown_order_is_dropped_and_changes_nothing() {
    let app = spawn_app().await;
    let buyer = app.user();
    let order = app
        .create_order(&buyer, app.insert_ticket("Concert", 1000).await)
        .await;

    app.publish(&expiration_complete(Uuid::now_v7())).await;
    // Handled means acknowledged: retrying cannot make the order exist.
    app.settle().await;

    assert_eq!(app.order_state(order.id).await, ("created".into(), 0));
    assert_eq!(app.outbox_count(Subject::OrderCancelled).await, 0);
}
