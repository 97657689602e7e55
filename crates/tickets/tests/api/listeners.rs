//! Order events move tickets: `order.created` reserves, `order.cancelled` releases only when
//! that very order holds the ticket. Every event may arrive twice and in any order.

use serde_json::json;
use ticketing_common::testing::eventually;
use ticketing_events::{Envelope, Subject, TicketUpdated};
use uuid::Uuid;

use crate::helpers::{WAIT, order_cancelled, order_created, order_refunded, spawn_app};

#[tokio::test]
async fn order_created_reserves_the_ticket_bumps_its_version_and_announces_it() {
    let app = spawn_app().await;
    let seller = app.user();
    let ticket = app.create_ticket(&seller, "Concert", 19.99).await;
    let order_id = Uuid::now_v7();

    app.publish(&order_created(&ticket, order_id)).await;

    let row = app
        .wait_for_row(ticket.id, "reserved", |row| row.order_id.is_some())
        .await;
    assert_eq!((row.order_id, row.version), (Some(order_id), 1));
    let events = app
        .wait_for_events::<TicketUpdated>(1, |event| event.data.id == ticket.id)
        .await;
    assert_eq!(
        serde_json::to_value(&events[0].data).unwrap(),
        json!({
            "id": ticket.id,
            "version": 1,
            "title": "Concert",
            "price": 19.99,
            "userId": seller.id,
            "orderId": order_id,
        })
    );
    app.settle().await;
    assert_eq!(app.ticket_events::<TicketUpdated>(ticket.id).await.len(), 1);
}

#[tokio::test]
async fn a_redelivered_or_republished_order_created_changes_nothing() {
    let app = spawn_app().await;
    let seller = app.user();
    let ticket = app.create_ticket(&seller, "Concert", 20).await;
    let order_id = Uuid::now_v7();
    let created = order_created(&ticket, order_id);
    app.publish(&created).await;
    app.wait_for_row(ticket.id, "reserved", |row| row.order_id == Some(order_id))
        .await;

    // The identical envelope again (a redelivery), and the same order under a new event id
    // (a producer that published it twice).
    app.publish(&created).await;
    app.publish(&Envelope::new(created.data.clone())).await;
    app.settle().await;

    let row = app.row(ticket.id).await.unwrap();
    assert_eq!((row.order_id, row.version), (Some(order_id), 1));
    assert_eq!(app.outbox_count(Subject::TicketUpdated).await, 1);
    let events = app.ticket_events::<TicketUpdated>(ticket.id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["version"], json!(1));
}

#[tokio::test]
async fn copies_of_order_created_arriving_together_reserve_the_ticket_once() {
    let app = spawn_app().await;
    let seller = app.user();
    let tickets = [
        app.create_ticket(&seller, "One", 10).await,
        app.create_ticket(&seller, "Two", 20).await,
        app.create_ticket(&seller, "Three", 30).await,
    ];
    let orders: Vec<Uuid> = tickets.iter().map(|_| Uuid::now_v7()).collect();

    // Three copies of each order's creation before the listener sees any of them: the
    // listener handles messages concurrently, so the copies race each other.
    for (ticket, order_id) in tickets.iter().zip(&orders) {
        let created = order_created(ticket, *order_id);
        app.publish(&created).await;
        app.publish(&created).await;
        app.publish(&Envelope::new(created.data.clone())).await;
    }
    app.settle().await;

    for (ticket, order_id) in tickets.iter().zip(&orders) {
        let row = app.row(ticket.id).await.unwrap();
        assert_eq!((row.order_id, row.version), (Some(*order_id), 1));
        assert_eq!(app.ticket_events::<TicketUpdated>(ticket.id).await.len(), 1);
    }
    assert_eq!(app.outbox_count(Subject::TicketUpdated).await, 3);
}

#[tokio::test]
async fn order_cancelled_for_an_order_that_does_not_hold_the_ticket_leaves_it_alone() {
    let app = spawn_app().await;
    let seller = app.user();
    let free = app.create_ticket(&seller, "Free", 10).await;
    let held = app.create_ticket(&seller, "Held", 20).await;
    let holder = Uuid::now_v7();
    app.publish(&order_created(&held, holder)).await;
    app.wait_for_row(held.id, "reserved", |row| row.order_id == Some(holder))
        .await;

    // A cancelled order of a free ticket, and another order of a held one.
    app.publish(&order_cancelled(free.id, Uuid::now_v7())).await;
    app.publish(&order_cancelled(held.id, Uuid::now_v7())).await;
    app.settle().await;

    let free_row = app.row(free.id).await.unwrap();
    assert_eq!((free_row.order_id, free_row.version), (None, 0));
    let held_row = app.row(held.id).await.unwrap();
    assert_eq!((held_row.order_id, held_row.version), (Some(holder), 1));
    assert_eq!(app.outbox_count(Subject::TicketUpdated).await, 1);
    assert!(app.ticket_events::<TicketUpdated>(free.id).await.is_empty());
    assert_eq!(app.show(held.id).await.order_id, Some(holder));
}

#[tokio::test]
async fn order_cancelled_of_the_holding_order_frees_the_ticket_and_announces_it() {
    let app = spawn_app().await;
    let seller = app.user();
    let ticket = app.create_ticket(&seller, "Concert", 20).await;
    let order_id = Uuid::now_v7();
    app.publish(&order_created(&ticket, order_id)).await;
    app.wait_for_row(ticket.id, "reserved", |row| row.order_id == Some(order_id))
        .await;

    let cancelled = order_cancelled(ticket.id, order_id);
    app.publish(&cancelled).await;

    let row = app
        .wait_for_row(ticket.id, "released", |row| row.order_id.is_none())
        .await;
    assert_eq!(row.version, 2);
    let events = app
        .wait_for_events::<TicketUpdated>(2, |event| event.data.id == ticket.id)
        .await;
    assert_eq!(
        events
            .iter()
            .map(|e| (e.data.version, e.data.order_id))
            .collect::<Vec<_>>(),
        [(1, Some(order_id)), (2, None)]
    );

    // The cancellation again, and then a late copy of the creation: both change nothing.
    app.publish(&cancelled).await;
    app.publish(&order_created(&ticket, order_id)).await;
    app.settle().await;
    let row = app.row(ticket.id).await.unwrap();
    assert_eq!((row.order_id, row.version), (None, 2));
    assert_eq!(app.ticket_events::<TicketUpdated>(ticket.id).await.len(), 2);
}

#[tokio::test]
async fn order_refunded_puts_the_ticket_back_on_sale_once() {
    let app = spawn_app().await;
    let seller = app.user();
    let ticket = app.create_ticket(&seller, "Concert", 20).await;
    let order_id = Uuid::now_v7();
    app.publish(&order_created(&ticket, order_id)).await;
    app.wait_for_row(ticket.id, "reserved", |row| row.order_id == Some(order_id))
        .await;

    let refunded = order_refunded(ticket.id, order_id);
    app.publish(&refunded).await;
    let row = app
        .wait_for_row(ticket.id, "released", |row| row.order_id.is_none())
        .await;
    assert_eq!(row.version, 2);
    // A duplicate, and a late copy of the creation, change nothing.
    app.publish(&refunded).await;
    app.publish(&order_created(&ticket, order_id)).await;
    app.settle().await;
    let row = app.row(ticket.id).await.unwrap();
    assert_eq!((row.order_id, row.version), (None, 2));
    assert_eq!(app.ticket_events::<TicketUpdated>(ticket.id).await.len(), 2);
    assert_eq!(app.show(ticket.id).await.order_id, None);
}

#[tokio::test]
async fn a_cancellation_that_overtakes_its_creation_leaves_the_ticket_free() {
    let app = spawn_app().await;
    let seller = app.user();
    let ticket = app.create_ticket(&seller, "Concert", 20).await;
    let order_id = Uuid::now_v7();

    app.publish(&order_cancelled(ticket.id, order_id)).await;
    app.wait_until_handled(Subject::OrderCancelled).await;
    app.publish(&order_created(&ticket, order_id)).await;
    // Handled means acked: the creation was looked at and dropped, not parked for later.
    app.wait_until_handled(Subject::OrderCreated).await;
    app.settle().await;

    let row = app.row(ticket.id).await.unwrap();
    assert_eq!((row.order_id, row.version), (None, 0));
    assert_eq!(app.outbox_count(Subject::TicketUpdated).await, 0);
    let shown = app.show(ticket.id).await;
    assert_eq!((shown.order_id, shown.version), (None, 0));
    assert_eq!(app.list("").await, [shown]);
}

#[tokio::test]
async fn a_reservation_for_a_ticket_another_order_holds_lands_once_that_order_is_cancelled() {
    let app = spawn_app().await;
    let seller = app.user();
    let ticket = app.create_ticket(&seller, "Concert", 20).await;
    let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
    app.publish(&order_created(&ticket, first)).await;
    app.wait_for_row(ticket.id, "reserved by the first order", |row| {
        row.order_id == Some(first)
    })
    .await;

    // The second order's creation overtook the first one's cancellation.
    app.publish(&order_created(&ticket, second)).await;
    let parked = eventually(WAIT, || async {
        let mut consumer = app
            .bus
            .consumer(ticketing_tickets::NAME, Subject::OrderCreated)
            .await
            .ok()?;
        let info = consumer.info().await.ok()?;
        (info.num_redelivered >= 1).then_some(())
    })
    .await;
    assert!(parked.is_some(), "the second creation was never retried");
    let row = app.row(ticket.id).await.unwrap();
    assert_eq!((row.order_id, row.version), (Some(first), 1));

    app.publish(&order_cancelled(ticket.id, first)).await;

    let row = app
        .wait_for_row(ticket.id, "reserved by the second order", |row| {
            row.order_id == Some(second)
        })
        .await;
    assert_eq!(row.version, 3);
    app.settle().await;
    let events = app.ticket_events::<TicketUpdated>(ticket.id).await;
    assert_eq!(
        events
            .iter()
            .map(|e| (e["version"].clone(), e["orderId"].clone()))
            .collect::<Vec<_>>(),
        [
            (json!(1), json!(first)),
            (json!(2), json!(null)),
            (json!(3), json!(second)),
        ]
    );
    assert_eq!(app.show(ticket.id).await.order_id, Some(second));
}

#[tokio::test]
async fn an_order_created_and_cancelled_at_the_same_moment_never_leaves_the_ticket_held() {
    const ROUNDS: usize = 3;
    const TICKETS: usize = 40;
    let app = spawn_app().await;
    let seller = app.user();
    let mut held = Vec::new();
    for round in 0..ROUNDS {
        let mut tickets = Vec::new();
        for n in 0..TICKETS {
            tickets.push(
                app.create_ticket(&seller, &format!("Show {round}.{n}"), 10)
                    .await,
            );
        }

        // Creation and cancellation of each order land together; they travel on separate
        // consumers and are handled concurrently, so their transactions interleave.
        let publishes = tickets.iter().map(|ticket| {
            let app = &app;
            let order_id = Uuid::now_v7();
            let (created, cancelled) = (
                order_created(ticket, order_id),
                order_cancelled(ticket.id, order_id),
            );
            async move {
                futures::join!(app.publish(&created), app.publish(&cancelled));
            }
        });
        futures::future::join_all(publishes).await;
        app.settle().await;

        for ticket in &tickets {
            let row = app.row(ticket.id).await.unwrap();
            if row.order_id.is_some() {
                held.push(row);
            } else {
                // Either the cancellation came first (nothing happened) or it undid the
                // reservation.
                assert!([0, 2].contains(&row.version), "{row:?}");
            }
        }
    }

    assert!(
        held.is_empty(),
        "{} of {} tickets stay held by a cancelled order: {held:?}",
        held.len(),
        ROUNDS * TICKETS
    );
}
