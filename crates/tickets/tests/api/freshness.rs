//! Reads come from the cache, yet never show a ticket older than the last answered write:
//! after a `PUT` the very next read shows it; after an order event, reads show it as soon as
//! the listener has handled (acked) the event.

use std::slice;

use reqwest::StatusCode;
use ticketing_events::Subject;
use uuid::Uuid;

use crate::helpers::{
    TestApp, TicketBody, order_cancelled, order_created, spawn_app, ticket_input,
};

/// Reads the ticket and the list twice, so both are in the cache (Redis and memory).
async fn warm(app: &TestApp, id: Uuid) -> (TicketBody, Vec<TicketBody>) {
    for _ in 0..2 {
        app.show(id).await;
        app.list("").await;
        app.list("?limit=1").await;
    }
    (app.show(id).await, app.list("").await)
}

#[tokio::test]
async fn after_an_update_both_reads_show_the_new_title_immediately() {
    let app = spawn_app().await;
    let seller = app.user();
    let ticket = app.create_ticket(&seller, "Concert", 20).await;
    let (shown, listed) = warm(&app, ticket.id).await;
    assert_eq!(shown.title, "Concert");
    assert_eq!(listed[0].title, "Concert");

    app.put_ticket(
        Some(&seller),
        &ticket.id.to_string(),
        &ticket_input("Opera", 25),
    )
    .await
    .assert_status(StatusCode::OK);

    let shown = app.show(ticket.id).await;
    let listed = app.list("").await;
    let first = app.list("?limit=1").await;
    assert_eq!((shown.title.as_str(), shown.version), ("Opera", 1));
    assert_eq!(shown.price, 25.0);
    assert_eq!(listed, slice::from_ref(&shown));
    assert_eq!(first, [shown]);
}

#[tokio::test]
async fn a_new_ticket_appears_in_a_cached_list_immediately() {
    let app = spawn_app().await;
    let seller = app.user();
    let first = app.create_ticket(&seller, "First", 20).await;
    let (_, listed) = warm(&app, first.id).await;
    assert_eq!(listed, slice::from_ref(&first));

    let second = app.create_ticket(&seller, "Second", 30).await;

    assert_eq!(app.list("").await, [second.clone(), first]);
    assert_eq!(app.list("?limit=1").await, [second]);
}

#[tokio::test]
async fn after_a_reservation_and_a_release_by_events_reads_show_them_once_handled() {
    let app = spawn_app().await;
    let seller = app.user();
    let ticket = app.create_ticket(&seller, "Concert", 20).await;
    let other = app.create_ticket(&seller, "Other", 10).await;
    let order_id = Uuid::now_v7();
    warm(&app, ticket.id).await;

    // Reserve: the listener commits, invalidates, then acks; from the ack on, reads agree.
    app.publish(&order_created(&ticket, order_id)).await;
    app.wait_for_row(ticket.id, "reserved", |row| row.order_id == Some(order_id))
        .await;
    app.wait_until_handled(Subject::OrderCreated).await;

    let shown = app.show(ticket.id).await;
    assert_eq!((shown.order_id, shown.version), (Some(order_id), 1));
    assert_eq!(app.list("").await, slice::from_ref(&other));
    assert_eq!(app.list("?limit=1").await, slice::from_ref(&other));

    // Release: warm the "reserved" view first, so a stale copy would be there to serve.
    warm(&app, ticket.id).await;
    app.publish(&order_cancelled(ticket.id, order_id)).await;
    app.wait_for_row(ticket.id, "released", |row| row.order_id.is_none())
        .await;
    app.wait_until_handled(Subject::OrderCancelled).await;

    let shown = app.show(ticket.id).await;
    assert_eq!((shown.order_id, shown.version), (None, 2));
    assert_eq!(app.list("").await, [other.clone(), shown]);
    assert_eq!(app.list("?limit=1").await, [other]);
}
