//! A ticket's `status` (available, reserved, sold) follows its orders: `order.created`
//! reserves, `order.completed` sells, `order.cancelled` and `order.refunded` put it back on
//! sale. Each change bumps the version once and is announced once, in any arrival order.

use ticketing_events::{Subject, TicketUpdated};
use uuid::Uuid;

use crate::helpers::{order_cancelled, order_completed, order_created, order_refunded, spawn_app};

#[tokio::test]
async fn status_goes_available_reserved_sold_and_back_to_available_after_a_refund() {
    let app = spawn_app().await;
    let seller = app.user();
    let ticket = app.create_ticket(&seller, "Concert", 20).await;
    assert_eq!(ticket.status, "available");
    let order_id = Uuid::now_v7();

    app.publish(&order_created(&ticket, order_id)).await;
    let shown = app.wait_for_status(ticket.id, "reserved").await;
    assert_eq!((shown.order_id, shown.version), (Some(order_id), 1));

    let completed = order_completed(ticket.id, order_id);
    app.publish(&completed).await;
    let shown = app.wait_for_status(ticket.id, "sold").await;
    assert_eq!((shown.order_id, shown.version), (Some(order_id), 2));
    // A redelivered completion changes nothing.
    app.publish(&completed).await;
    app.settle().await;
    assert_eq!(app.show(ticket.id).await.version, 2);
    // A sold ticket cannot be edited or withdrawn.
    let edit = app
        .put_ticket(
            Some(&seller),
            &ticket.id.to_string(),
            &serde_json::json!({"title": "X", "price": 1}),
        )
        .await;
    edit.assert_status(reqwest::StatusCode::CONFLICT);
    let withdraw = app
        .delete_ticket(Some(&seller), &ticket.id.to_string())
        .await;
    withdraw.assert_status(reqwest::StatusCode::CONFLICT);

    app.publish(&order_refunded(ticket.id, order_id)).await;
    let shown = app.wait_for_status(ticket.id, "available").await;
    assert_eq!((shown.order_id, shown.version), (None, 3));
    assert_eq!(app.list("").await, [shown]);

    let events = app.ticket_events::<TicketUpdated>(ticket.id).await;
    let versions: Vec<i64> = events
        .iter()
        .map(|e| e["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2, 3], "{events:?}");
}

#[tokio::test]
async fn a_cancelled_reservation_is_available_again() {
    let app = spawn_app().await;
    let ticket = app.create_ticket(&app.user(), "Concert", 20).await;
    let order_id = Uuid::now_v7();
    app.publish(&order_created(&ticket, order_id)).await;
    app.wait_for_row(ticket.id, "reserved", |row| row.order_id.is_some())
        .await;

    app.publish(&order_cancelled(ticket.id, order_id)).await;

    let shown = app.wait_for_status(ticket.id, "available").await;
    assert_eq!((shown.order_id, shown.version), (None, 2));
}

#[tokio::test]
async fn a_completion_that_overtakes_its_creation_waits_for_it_then_sells_the_ticket() {
    let app = spawn_app().await;
    let ticket = app.create_ticket(&app.user(), "Concert", 20).await;
    let order_id = Uuid::now_v7();

    app.publish(&order_completed(ticket.id, order_id)).await;
    app.wait_until_redelivered(Subject::OrderCompleted).await;
    assert_eq!(app.show(ticket.id).await.status, "available");

    app.publish(&order_created(&ticket, order_id)).await;

    let shown = app.wait_for_status(ticket.id, "sold").await;
    assert_eq!((shown.order_id, shown.version), (Some(order_id), 2));
    assert_eq!(app.parked_count().await, 0, "nothing parked");
}

#[tokio::test]
async fn a_completion_of_an_order_already_refunded_changes_nothing() {
    let app = spawn_app().await;
    let ticket = app.create_ticket(&app.user(), "Concert", 20).await;
    let order_id = Uuid::now_v7();
    app.publish(&order_created(&ticket, order_id)).await;
    app.wait_for_row(ticket.id, "reserved", |row| row.order_id.is_some())
        .await;
    // The refund overtakes the completion (separate subjects).
    app.publish(&order_refunded(ticket.id, order_id)).await;
    app.wait_for_row(ticket.id, "released", |row| row.order_id.is_none())
        .await;

    app.publish(&order_completed(ticket.id, order_id)).await;
    app.wait_until_handled(Subject::OrderCompleted).await;
    app.settle().await;

    let shown = app.show(ticket.id).await;
    assert_eq!((shown.status.as_str(), shown.version), ("available", 2));
    assert_eq!(app.parked_count().await, 0, "nothing parked");
}
