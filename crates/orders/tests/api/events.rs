//! `POST /api/orders {eventId}`: the best available seat of an event (the lowest free seat
//! number), each seat at most once however many buyers race, never more than the event's
//! `maxPerBuyer` per buyer, nothing once the event has started. Seats come from one
//! `event.created`, their ids derived with the events crate.

use std::{collections::HashSet, sync::Arc};

use reqwest::StatusCode;
use serde_json::json;
use ticketing_events::{Cents, Envelope, EventDetails, EventUpdated, Subject, seat_id};
use tokio::{sync::Barrier, task::JoinSet};
use uuid::Uuid;

use crate::helpers::OrderReply as _;
use crate::helpers::{
    event_created, expiration_complete, payment_created, payment_refunded, spawn_app,
};

#[tokio::test]
async fn buyers_get_the_lowest_free_seat_and_a_freed_seat_is_the_next_one_sold() {
    let app = spawn_app().await;
    let event = app.seed_event(3, 4).await;
    let (alice, bob) = (app.user(), app.user());

    let first = app.order_event(&alice, event).await.order();
    let second = app.order_event(&bob, event).await.order();

    assert_eq!(first.ticket.id, seat_id(event, "1"));
    assert_eq!(
        (first.ticket.event_id, first.ticket.seat.as_deref()),
        (Some(event), Some("1"))
    );
    assert_eq!(first.ticket.price, 25.0);
    assert_eq!(second.ticket.seat.as_deref(), Some("2"));
    // Cancelling seat 1 makes it the best available again.
    app.cancel_order(&alice, first.id).await;
    assert_eq!(
        app.order_event(&bob, event)
            .await
            .order()
            .ticket
            .seat
            .as_deref(),
        Some("1")
    );
    let third = app.order_event(&alice, event).await.order();
    assert_eq!(third.ticket.seat.as_deref(), Some("3"));

    let sold_out = app.order_event(&app.user(), event).await;
    sold_out.assert_error(StatusCode::CONFLICT);
    assert!(sold_out.text.contains("Sold out"), "{}", sold_out.text);
    assert_eq!(app.order_count().await, 4);
    // The buyer's own list shows the seat.
    let listed = app.list(Some(&bob)).await.orders();
    assert!(listed.iter().all(|o| o.ticket.event_id == Some(event)));
}

#[tokio::test]
async fn an_expired_refunded_or_swept_order_frees_its_seat() {
    let app = spawn_app().await;
    let event = app.seed_event(2, 4).await;
    let buyer = app.user();
    let expiring = app.order_event(&buyer, event).await.order();
    let paid = app.order_event(&buyer, event).await.order();
    app.order_event(&buyer, event)
        .await
        .assert_error(StatusCode::CONFLICT);

    // Its window has passed (the expiry job fires only then).
    sqlx::query("UPDATE orders SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(expiring.id)
        .execute(&app.pool)
        .await
        .unwrap();
    app.publish(&expiration_complete(expiring.id)).await;
    app.wait_for_order(expiring.id, "expired", |row| row.status == "cancelled")
        .await;
    let again = app.order_event(&buyer, event).await.order();
    assert_eq!(again.ticket.id, expiring.ticket.id);

    app.publish(&payment_created(paid.id)).await;
    app.wait_for_order(paid.id, "paid", |row| row.status == "complete")
        .await;
    app.publish(&payment_refunded(paid.id)).await;
    app.wait_for_order(paid.id, "refunded", |row| row.status == "refunded")
        .await;
    let after_refund = app.order_event(&app.user(), event).await.order();
    assert_eq!(after_refund.ticket.id, paid.ticket.id);

    // The sweep frees seats too.
    sqlx::query("UPDATE orders SET expires_at = now() - interval '1 hour' WHERE id = $1")
        .bind(after_refund.id)
        .execute(&app.pool)
        .await
        .unwrap();
    ticketing_orders::flows::sweep_expired(&app.orders)
        .await
        .unwrap();
    assert_eq!(app.order_state(after_refund.id).await.0, "cancelled");
    let after_sweep = app.order_event(&app.user(), event).await.order();
    assert_eq!(after_sweep.ticket.id, paid.ticket.id);
}

#[tokio::test]
async fn a_buyer_holds_at_most_max_per_buyer_seats_by_event_or_by_seat_id() {
    let app = spawn_app().await;
    let event = app.seed_event(10, 2).await;
    let buyer = app.user();
    let one = app.order_event(&buyer, event).await.order();
    app.order(&buyer, seat_id(event, "7")).await.order();

    let by_event = app.order_event(&buyer, event).await;
    by_event.assert_error(StatusCode::CONFLICT);
    assert!(by_event.text.contains("2 seats"), "{}", by_event.text);
    app.order(&buyer, seat_id(event, "8"))
        .await
        .assert_error(StatusCode::CONFLICT);
    assert_eq!(app.order_count().await, 2, "refusals store nothing");

    // A cancelled order no longer counts; another buyer is not limited by this one.
    app.cancel_order(&buyer, one.id).await;
    app.order_event(&buyer, event).await.order();
    app.order_event(&app.user(), event).await.order();
}

#[tokio::test]
async fn selling_stops_when_the_event_starts_and_unknown_or_double_targets_are_refused() {
    let app = spawn_app().await;
    let event = app.seed_event(5, 4).await;
    let buyer = app.user();
    // The organiser moves the start into the past (version 1).
    let mut details = EventDetails {
        id: event,
        version: 1,
        title: "Show".into(),
        price: Cents(2500),
        seats: 5,
        user_id: Uuid::now_v7(),
        starts_at: time::OffsetDateTime::now_utc() - time::Duration::minutes(1),
        max_per_buyer: 4,
    };
    app.publish(&Envelope::new(EventUpdated(details.clone())))
        .await;
    app.wait_until_handled(Subject::EventUpdated).await;

    let started = app.order_event(&buyer, event).await;
    started.assert_error(StatusCode::CONFLICT);
    assert!(started.text.contains("started"), "{}", started.text);
    app.order(&buyer, seat_id(event, "3"))
        .await
        .assert_error(StatusCode::CONFLICT);

    details.version = 2;
    details.title = "Show (moved)".into();
    details.starts_at = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    app.publish(&Envelope::new(EventUpdated(details))).await;
    app.wait_until_handled(Subject::EventUpdated).await;
    let order = app.order_event(&buyer, event).await.order();
    assert_eq!(
        order.ticket.title, "Show (moved)",
        "a seat's order shows the event's title"
    );

    app.order_event(&buyer, Uuid::now_v7())
        .await
        .assert_error(StatusCode::NOT_FOUND);
    let both = app
        .post_order(
            Some(&buyer),
            &json!({"eventId": event, "ticketId": seat_id(event, "2")}),
        )
        .await;
    both.assert_error(StatusCode::BAD_REQUEST);
    assert_eq!(both.json()["errors"][0]["field"], "eventId");
    let bad = app.post_order(Some(&buyer), &json!({"eventId": 12})).await;
    bad.assert_error(StatusCode::BAD_REQUEST);
    app.post_order(None, &json!({"eventId": event}))
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn hundreds_of_buyers_racing_for_one_event_each_get_a_different_seat_or_a_clean_409() {
    const SEATS: i32 = 150;
    const BUYERS: usize = 120;
    const TRIES: usize = 3;
    const MAX: i32 = 2;
    let app = Arc::new(spawn_app().await);
    let event = app.seed_event(SEATS, MAX).await;
    let buyers: Vec<_> = (0..BUYERS).map(|_| app.user()).collect();
    let barrier = Arc::new(Barrier::new(BUYERS * TRIES));
    let mut racers = JoinSet::new();
    for buyer in &buyers {
        for _ in 0..TRIES {
            let (app, barrier, buyer) = (app.clone(), barrier.clone(), buyer.clone());
            racers.spawn(async move {
                barrier.wait().await;
                (buyer.id, app.order_event(&buyer, event).await)
            });
        }
    }
    let replies = racers.join_all().await;

    let statuses: Vec<StatusCode> = replies.iter().map(|(_, r)| r.status).collect();
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    let won: Vec<_> = replies
        .iter()
        .filter(|(_, r)| r.status == StatusCode::CREATED)
        .map(|(buyer, r)| (*buyer, r.order()))
        .collect();
    // 120 buyers × 2 = 240 wanted, 150 seats: every seat sold once, nobody over the limit.
    assert_eq!(won.len(), SEATS as usize, "{statuses:?}");
    let seats: HashSet<_> = won.iter().map(|(_, o)| o.ticket.id).collect();
    assert_eq!(seats.len(), won.len(), "a seat sold twice");
    for buyer in &buyers {
        let held = won.iter().filter(|(b, _)| *b == buyer.id).count();
        assert!(held <= MAX as usize, "buyer {} holds {held}", buyer.id);
    }
    // The losers stored nothing, and every order was announced once.
    assert_eq!(app.order_count().await, i64::from(SEATS));
    app.settle().await;
    assert_eq!(
        app.outbox_count(Subject::OrderCreated).await,
        i64::from(SEATS)
    );
    let free: i64 =
        sqlx::query_scalar("SELECT count(*) FROM seats WHERE event_id = $1 AND order_id IS NULL")
            .bind(event)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(free, 0);
}

#[tokio::test]
async fn an_event_is_learnt_once_with_every_seat_even_when_redelivered() {
    let app = spawn_app().await;
    let id = Uuid::now_v7();
    let created = event_created(id, 2_000, 4, time::Duration::days(3));
    app.publish(&created).await;
    app.publish(&created).await;
    app.wait_until_handled(Subject::EventCreated).await;

    let (tickets, seats): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM tickets WHERE event_id = $1),
                (SELECT count(*) FROM seats WHERE event_id = $1)",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((tickets, seats), (2_000, 2_000));
    let last = app.order(&app.user(), seat_id(id, "2000")).await.order();
    assert_eq!(last.ticket.seat.as_deref(), Some("2000"));
}
