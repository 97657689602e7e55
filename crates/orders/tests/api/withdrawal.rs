//! `ticket.withdrawn`: the seller took the ticket off sale. Ordering it is 404 from then on,
//! and an order placed for it in the same instant (tickets had not seen that order yet) is
//! cancelled and announced: the withdrawal wins, paid or not. Payments completing an order
//! announce `order.completed`, which tickets turns into "sold".

use reqwest::StatusCode;
use serde_json::json;
use ticketing_events::{OrderCancelled, OrderCompleted, Subject};

use crate::helpers::OrderReply as _;
use crate::helpers::{payment_created, spawn_app, ticket_updated, ticket_withdrawn};

#[tokio::test]
async fn a_withdrawn_ticket_cannot_be_ordered() {
    let app = spawn_app().await;
    let ticket = app.seed_ticket("Concert", 1000).await;

    app.publish(&ticket_withdrawn(ticket, 1)).await;
    app.wait_until_handled(Subject::TicketWithdrawn).await;

    app.order(&app.user(), ticket)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    assert_eq!(app.order_count().await, 0);
    assert_eq!(app.ticket_row(ticket).await.unwrap().version, 1);
}

#[tokio::test]
async fn a_live_and_a_paid_order_for_a_withdrawn_ticket_are_cancelled_and_announced_once() {
    let app = spawn_app().await;
    let (buyer, payer) = (app.user(), app.user());
    let live_ticket = app.seed_ticket("Live", 1000).await;
    let paid_ticket = app.seed_ticket("Paid", 2000).await;
    let live = app.create_order(&buyer, live_ticket).await;
    let paid = app.create_order(&payer, paid_ticket).await;
    app.publish(&payment_created(paid.id)).await;
    app.wait_for_order(paid.id, "paid", |row| row.status == "complete")
        .await;

    for ticket in [live_ticket, paid_ticket] {
        let withdrawn = ticket_withdrawn(ticket, 1);
        app.publish(&withdrawn).await;
        app.publish(&withdrawn).await; // a redelivery
    }

    app.wait_for_order(live.id, "cancelled", |row| row.status == "cancelled")
        .await;
    app.wait_for_order(paid.id, "cancelled", |row| row.status == "cancelled")
        .await;
    app.settle().await;
    assert_eq!(app.order_state(live.id).await, ("cancelled".into(), 1));
    assert_eq!(app.order_state(paid.id).await, ("cancelled".into(), 2));
    assert_eq!(
        app.order_events::<OrderCancelled>(live.id).await,
        [json!({"id": live.id, "version": 1, "ticket": {"id": live_ticket}})]
    );
    assert_eq!(
        app.order_events::<OrderCancelled>(paid.id).await,
        [json!({"id": paid.id, "version": 2, "ticket": {"id": paid_ticket}})]
    );
    let shown = app.show(Some(&payer), &paid.id.to_string()).await.order();
    assert_eq!(shown.status, "cancelled");
}

#[tokio::test]
async fn a_withdrawal_ahead_of_the_replica_waits_for_the_versions_before_it() {
    let app = spawn_app().await;
    let ticket = app.seed_ticket("Concert", 1000).await;

    // Version 2 (the withdrawal) arrives before version 1 (an edit).
    app.publish(&ticket_withdrawn(ticket, 2)).await;
    app.wait_until_redelivered(Subject::TicketWithdrawn).await;
    let order = app.create_order(&app.user(), ticket).await;

    app.publish(&ticket_updated(ticket, 1, "Concert (edited)", 1000))
        .await;

    app.wait_for_order(order.id, "cancelled", |row| row.status == "cancelled")
        .await;
    assert_eq!(app.ticket_row(ticket).await.unwrap().version, 2);
}

#[tokio::test]
async fn orders_placed_while_the_withdrawal_lands_are_all_cancelled_or_refused() {
    let app = spawn_app().await;
    let buyers: Vec<_> = (0..10).map(|_| app.user()).collect();
    for round in 0..10 {
        let ticket = app.seed_ticket(&format!("Race {round}"), 1000).await;
        let withdrawn = ticket_withdrawn(ticket, 1);
        let orders = buyers.iter().map(|buyer| app.order(buyer, ticket));
        let (_, replies) = tokio::join!(app.publish(&withdrawn), futures::future::join_all(orders));
        app.wait_until_handled(Subject::TicketWithdrawn).await;
        app.settle().await;
        for reply in &replies {
            assert!(
                [
                    StatusCode::CREATED,
                    StatusCode::NOT_FOUND,
                    StatusCode::CONFLICT
                ]
                .contains(&reply.status),
                "{} {}",
                reply.status,
                reply.text
            );
        }
        // Whatever won the race for the ticket, no order for it is left holding it.
        let holding: Vec<_> = app
            .orders_of_ticket(ticket)
            .await
            .into_iter()
            .filter(|row| row.status != "cancelled")
            .collect();
        assert!(holding.is_empty(), "round {round}: {holding:?}");
    }
}

#[tokio::test]
async fn a_payment_completing_an_order_announces_order_completed_once() {
    let app = spawn_app().await;
    let buyer = app.user();
    let ticket = app.seed_ticket("Concert", 1000).await;
    let order = app.create_order(&buyer, ticket).await;
    let paid = payment_created(order.id);

    app.publish(&paid).await;
    app.publish(&paid).await;

    let events = app
        .wait_for_order_events::<OrderCompleted>(order.id, 1)
        .await;
    assert_eq!(
        events,
        [json!({"id": order.id, "version": 1, "ticket": {"id": ticket}})]
    );
    app.settle().await;
    assert_eq!(app.outbox_count(Subject::OrderCompleted).await, 1);
}
