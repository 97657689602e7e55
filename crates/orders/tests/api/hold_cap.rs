//! One buyer cannot hold the inventory: at most `MAX_LIVE_ORDERS_PER_USER` unpaid orders at
//! once, decided in the order's own transaction so a burst from one buyer cannot overshoot.

use std::sync::Arc;

use reqwest::StatusCode;
use ticketing_events::Subject;
use tokio::{sync::Barrier, task::JoinSet};
use uuid::Uuid;

use crate::helpers::{TestApp, User, payment_created, spawn_app, spawn_app_with};

/// `tickets.len()` orders from one buyer, one per ticket, released together.
async fn burst(app: &Arc<TestApp>, buyer: &User, tickets: &[Uuid]) -> Vec<StatusCode> {
    let barrier = Arc::new(Barrier::new(tickets.len()));
    let mut requests = JoinSet::new();
    for ticket in tickets {
        let (app, barrier, buyer, ticket) = (app.clone(), barrier.clone(), buyer.clone(), *ticket);
        requests.spawn(async move {
            barrier.wait().await;
            let reply = app.order(&buyer, ticket).await;
            if reply.status == StatusCode::CONFLICT {
                let message = reply.error().errors[0].message.clone();
                assert!(message.contains("10 unpaid orders"), "{message}");
            }
            reply.status
        });
    }
    requests.join_all().await
}

async fn live_orders_of(app: &TestApp, buyer: Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM orders WHERE user_id = $1 AND status IN ('created', 'awaiting:payment')",
    )
    .bind(buyer)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn twenty_parallel_orders_from_one_buyer_hold_at_most_ten_tickets() {
    let app = Arc::new(spawn_app().await);
    for _round in 0..5 {
        let buyer = app.user();
        let mut tickets = Vec::new();
        for n in 0..20 {
            tickets.push(app.insert_ticket(&format!("Seat {n}"), 1000).await);
        }

        let statuses = burst(&app, &buyer, &tickets).await;

        let created = statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count();
        let refused = statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count();
        assert_eq!((created, refused), (10, 10), "{statuses:?}");
        assert_eq!(live_orders_of(&app, buyer.id).await, 10);
    }
    assert_eq!(app.outbox_count(Subject::OrderCreated).await, 50);
}

#[tokio::test]
async fn a_cancelled_or_paid_order_frees_a_place_and_other_buyers_have_their_own() {
    let app = spawn_app().await;
    let buyer = app.user();
    let mut orders = Vec::new();
    for n in 0..10 {
        let ticket = app.insert_ticket(&format!("Seat {n}"), 1000).await;
        orders.push(app.create_order(&buyer, ticket).await.id);
    }
    let eleventh = app.insert_ticket("Seat 10", 1000).await;
    let refused = app.order(&buyer, eleventh).await;
    refused.assert_status(StatusCode::CONFLICT);
    assert!(
        app.orders_of_ticket(eleventh).await.is_empty(),
        "a refused order stores nothing"
    );

    app.order(&app.user(), eleventh)
        .await
        .assert_status(StatusCode::CREATED);
    app.cancel_order(&buyer, orders[0]).await;
    let twelfth = app.insert_ticket("Seat 11", 1000).await;
    app.order(&buyer, twelfth)
        .await
        .assert_status(StatusCode::CREATED);
    // At the cap again; paying one frees a place too.
    let thirteenth = app.insert_ticket("Seat 12", 1000).await;
    app.order(&buyer, thirteenth)
        .await
        .assert_status(StatusCode::CONFLICT);
    app.publish(&payment_created(orders[1])).await;
    app.wait_for_order(orders[1], "paid", |o| o.status == "complete")
        .await;
    app.order(&buyer, thirteenth)
        .await
        .assert_status(StatusCode::CREATED);
}

#[tokio::test]
async fn an_unknown_or_held_ticket_is_still_404_or_409_for_a_buyer_at_the_cap() {
    let app = spawn_app_with(|orders| ticketing_orders::Orders {
        max_live_per_buyer: Some(1),
        ..orders
    })
    .await;
    let buyer = app.user();
    let first = app.insert_ticket("Seat 1", 1000).await;
    app.create_order(&buyer, first).await;

    app.order(&buyer, Uuid::now_v7())
        .await
        .assert_status(StatusCode::NOT_FOUND);
    // A ticket someone else holds: the usual 409 for it, not the cap's.
    let taken = app.insert_ticket("Taken", 1000).await;
    app.create_order(&app.user(), taken).await;
    let held = app.order(&buyer, taken).await;
    held.assert_status(StatusCode::CONFLICT);
    assert!(
        held.error().errors[0].message.contains("already reserved"),
        "{}",
        held.text
    );
    let refused = app
        .order(&buyer, app.insert_ticket("Seat 2", 1000).await)
        .await;
    refused.assert_status(StatusCode::CONFLICT);
    assert!(
        refused.error().errors[0]
            .message
            .contains("1 unpaid orders")
    );
}

#[tokio::test]
async fn without_a_cap_one_buyer_may_hold_any_number() {
    let app = spawn_app_with(|orders| ticketing_orders::Orders {
        max_live_per_buyer: None,
        ..orders
    })
    .await;
    let buyer = app.user();
    for n in 0..15 {
        let ticket = app.insert_ticket(&format!("Seat {n}"), 1000).await;
        app.order(&buyer, ticket)
            .await
            .assert_status(StatusCode::CREATED);
    }
    assert_eq!(live_orders_of(&app, buyer.id).await, 15);
}
