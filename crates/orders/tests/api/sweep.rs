//! The safety sweep cancels live orders well past their expiry (a lost expiration job), each
//! with its `order.cancelled`, and nothing else.

use std::{sync::Arc, time::Duration};

use serde_json::json;
use ticketing_events::{OrderCancelled, Subject};
use ticketing_orders::{Orders, flows::sweep_expired};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

/// `count` live orders, each of its own ticket, that expired `ago` and were never announced
/// as expired.
async fn overdue_orders(app: &TestApp, count: usize, ago: time::Duration) -> Vec<uuid::Uuid> {
    let user = app.user();
    let mut ids = Vec::new();
    for n in 0..count {
        let ticket = app.insert_ticket(&format!("Show {n}"), 1000).await;
        ids.push(app.insert_order(user.id, ticket, "created", -ago).await);
    }
    ids
}

#[tokio::test]
async fn the_sweep_cancels_orders_past_expiry_plus_grace_and_announces_each() {
    let app = spawn_app().await; // grace 60 s
    let buyer = app.user();
    let overdue_ticket = app.insert_ticket("Overdue", 1000).await;
    let overdue = app
        .insert_order(
            buyer.id,
            overdue_ticket,
            "created",
            -time::Duration::minutes(2),
        )
        .await;
    let awaiting = app
        .insert_order(
            buyer.id,
            app.insert_ticket("Awaiting", 1000).await,
            "awaiting:payment",
            -time::Duration::minutes(5),
        )
        .await;
    let in_grace = app
        .insert_order(
            buyer.id,
            app.insert_ticket("In grace", 1000).await,
            "created",
            -time::Duration::seconds(10),
        )
        .await;
    let paid = app
        .insert_order(
            buyer.id,
            app.insert_ticket("Paid", 1000).await,
            "complete",
            -time::Duration::hours(1),
        )
        .await;
    let live = app
        .create_order(&buyer, app.insert_ticket("Live", 1000).await)
        .await;

    let swept = sweep_expired(&app.orders).await.unwrap();

    assert_eq!(swept, 2);
    assert_eq!(app.order_state(overdue).await, ("cancelled".into(), 1));
    assert_eq!(app.order_state(awaiting).await, ("cancelled".into(), 1));
    assert_eq!(app.order_state(in_grace).await, ("created".into(), 0));
    assert_eq!(app.order_state(paid).await, ("complete".into(), 0));
    assert_eq!(app.order_state(live.id).await, ("created".into(), 0));
    let events = app
        .wait_for_order_events::<OrderCancelled>(overdue, 1)
        .await;
    assert_eq!(
        events,
        [json!({"id": overdue, "version": 1, "ticket": {"id": overdue_ticket}})]
    );
    app.wait_for_order_events::<OrderCancelled>(awaiting, 1)
        .await;

    // Nothing is left to sweep; a second sweep changes and announces nothing.
    assert_eq!(sweep_expired(&app.orders).await.unwrap(), 0);
    app.settle().await;
    assert_eq!(app.outbox_count(Subject::OrderCancelled).await, 2);
    // The swept order's ticket is free again.
    app.create_order(&app.user(), overdue_ticket).await;
}

#[tokio::test]
async fn the_sweep_works_through_more_overdue_orders_than_one_batch() {
    let app = spawn_app_with(|orders| Orders {
        sweep_grace: Duration::ZERO,
        ..orders
    })
    .await;
    let ids = overdue_orders(&app, 250, time::Duration::seconds(1)).await;

    let swept = sweep_expired(&app.orders).await.unwrap();

    assert_eq!(swept, ids.len());
    let cancelled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM orders WHERE status = 'cancelled' AND version = 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(cancelled, ids.len() as i64);
    assert_eq!(
        app.outbox_count(Subject::OrderCancelled).await,
        ids.len() as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sweeps_running_at_once_cancel_each_order_exactly_once() {
    let app = Arc::new(
        spawn_app_with(|orders| Orders {
            sweep_grace: Duration::ZERO,
            ..orders
        })
        .await,
    );
    let ids = overdue_orders(&app, 300, time::Duration::seconds(1)).await;

    // Four replicas sweeping together; SKIP LOCKED hands each order to one of them.
    let sweeps = (0..4).map(|_| {
        let app = app.clone();
        tokio::spawn(async move { sweep_expired(&app.orders).await.unwrap() })
    });
    let swept: usize = futures::future::join_all(sweeps)
        .await
        .into_iter()
        .map(|joined| joined.unwrap())
        .sum();

    assert_eq!(swept, ids.len());
    let versions: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, version FROM orders GROUP BY status, version")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(versions, [("cancelled".to_owned(), 1)]);
    assert_eq!(
        app.outbox_count(Subject::OrderCancelled).await,
        ids.len() as i64
    );
}

#[tokio::test]
async fn the_background_sweep_cancels_an_order_whose_expiry_never_arrived() {
    let app = spawn_app_with(|orders| Orders {
        window: Duration::from_secs(1),
        sweep_grace: Duration::ZERO,
        sweep_interval: Duration::from_millis(200),
        ..orders
    })
    .await;
    let buyer = app.user();
    let ticket = app.insert_ticket("Concert", 1000).await;
    let order = app.create_order(&buyer, ticket).await;

    // No `expiration.complete` is ever published.
    app.wait_for_order(order.id, "swept", |row| row.status == "cancelled")
        .await;

    assert_eq!(app.order_state(order.id).await, ("cancelled".into(), 1));
    let events = app
        .wait_for_order_events::<OrderCancelled>(order.id, 1)
        .await;
    assert_eq!(
        events,
        [json!({"id": order.id, "version": 1, "ticket": {"id": ticket}})]
    );
    app.create_order(&app.user(), ticket).await;
}
