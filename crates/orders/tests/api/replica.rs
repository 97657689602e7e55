//! The ticket replica follows `ticket.created` and `ticket.updated` in version order: early
//! versions wait for their predecessors, duplicates and stale versions change nothing.

use reqwest::StatusCode;
use ticketing_events::Subject;
use uuid::Uuid;

use crate::helpers::OrderReply as _;
use crate::helpers::{spawn_app, ticket_created, ticket_updated};

#[tokio::test]
async fn a_ticket_announced_by_ticket_created_can_be_ordered_once_the_replica_has_it() {
    let app = spawn_app().await;
    let buyer = app.user();
    let id = Uuid::now_v7();
    // The orders service learns tickets from events: before that, the ticket is unknown.
    app.order(&buyer, id)
        .await
        .assert_error(StatusCode::NOT_FOUND);

    app.publish(&ticket_created(id, "Concert", 2550)).await;

    let row = app.wait_for_ticket(id, "learnt", |_| true).await;
    assert_eq!(
        (row.title.as_str(), row.price_cents, row.version),
        ("Concert", 2550, 0)
    );
    let order = app.create_order(&buyer, id).await;
    assert_eq!(
        (
            order.ticket.id,
            order.ticket.title.as_str(),
            order.ticket.price
        ),
        (id, "Concert", 25.5)
    );
}

#[tokio::test]
async fn a_duplicate_ticket_created_changes_nothing() {
    let app = spawn_app().await;
    let id = Uuid::now_v7();
    let created = ticket_created(id, "Concert", 1000);
    app.publish(&created).await;
    app.wait_for_ticket(id, "learnt", |_| true).await;
    app.publish(&ticket_updated(id, 1, "Opera", 1500)).await;
    app.wait_for_ticket(id, "at version 1", |row| row.version == 1)
        .await;

    // The same envelope again, and the same ticket under a new event id with other values.
    app.publish(&created).await;
    app.publish(&ticket_created(id, "Something else", 99)).await;
    app.settle().await;

    let row = app.ticket_row(id).await.unwrap();
    assert_eq!(
        (row.title.as_str(), row.price_cents, row.version),
        ("Opera", 1500, 1)
    );
}

#[tokio::test]
async fn a_ticket_update_that_overtakes_its_predecessor_waits_and_both_apply_in_order() {
    let app = spawn_app().await;
    let id = Uuid::now_v7();
    app.publish(&ticket_created(id, "Concert", 1000)).await;
    app.wait_for_ticket(id, "learnt", |_| true).await;

    app.publish(&ticket_updated(id, 2, "Ballet", 3000)).await;
    app.wait_until_redelivered(Subject::TicketUpdated).await;
    let row = app.ticket_row(id).await.unwrap();
    assert_eq!(
        (row.title.as_str(), row.version),
        ("Concert", 0),
        "version 2 must not apply over 0"
    );

    app.publish(&ticket_updated(id, 1, "Opera", 2000)).await;

    let row = app
        .wait_for_ticket(id, "at version 2", |row| row.version == 2)
        .await;
    assert_eq!((row.title.as_str(), row.price_cents), ("Ballet", 3000));
    app.settle().await;
    let row = app.ticket_row(id).await.unwrap();
    assert_eq!(
        (row.title.as_str(), row.price_cents, row.version),
        ("Ballet", 3000, 2)
    );
}

#[tokio::test]
async fn a_ticket_update_that_overtakes_the_creation_waits_for_it() {
    let app = spawn_app().await;
    let id = Uuid::now_v7();

    app.publish(&ticket_updated(id, 1, "Opera", 2000)).await;
    app.wait_until_redelivered(Subject::TicketUpdated).await;
    assert_eq!(app.ticket_row(id).await, None);
    app.publish(&ticket_created(id, "Concert", 1000)).await;

    let row = app
        .wait_for_ticket(id, "at version 1", |row| row.version == 1)
        .await;
    assert_eq!((row.title.as_str(), row.price_cents), ("Opera", 2000));
}

#[tokio::test]
async fn duplicate_and_stale_ticket_updates_are_dropped() {
    let app = spawn_app().await;
    let buyer = app.user();
    let id = Uuid::now_v7();
    app.publish(&ticket_created(id, "Concert", 1000)).await;
    app.wait_for_ticket(id, "learnt", |_| true).await;
    let v1 = ticket_updated(id, 1, "Opera", 2000);
    app.publish(&v1).await;
    app.publish(&ticket_updated(id, 2, "Ballet", 3000)).await;
    app.wait_for_ticket(id, "at version 2", |row| row.version == 2)
        .await;

    // A redelivered version 1, version 1 again under a new event id, version 2 twice.
    app.publish(&v1).await;
    app.publish(&ticket_updated(id, 1, "Stale", 1)).await;
    app.publish(&ticket_updated(id, 2, "Duplicate", 2)).await;
    app.publish(&ticket_updated(id, 0, "Ancient", 3)).await;
    app.settle().await;

    let row = app.ticket_row(id).await.unwrap();
    assert_eq!(
        (row.title.as_str(), row.price_cents, row.version),
        ("Ballet", 3000, 2)
    );
    // Dropped means acknowledged, not parked: nothing is waiting on the consumer.
    assert!(app.consumer_drained(Subject::TicketUpdated).await);
    // An order shows the replica's current title and price.
    let order = app.create_order(&buyer, id).await;
    assert_eq!(
        (order.ticket.title.as_str(), order.ticket.price),
        ("Ballet", 30.0)
    );
    let shown = app.show(Some(&buyer), &order.id.to_string()).await;
    assert_eq!(shown.order(), order);
}
