//! `POST /api/orders`: who may order, what a valid request is, which tickets can be ordered,
//! and what an order announces.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use ticketing_events::{OrderCreated, Subject};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::helpers::OrderReply as _;
use crate::helpers::{payment_created, spawn_app, spawn_app_with};

/// How far a time computed by the server may be from one computed here.
const CLOCK_SLACK: time::Duration = time::Duration::seconds(5);

#[tokio::test]
async fn a_signed_in_buyer_orders_a_known_ticket_and_gets_201_with_the_whole_order() {
    let app = spawn_app().await;
    let buyer = app.user();
    let ticket = app.insert_ticket("Concert", 1999).await;

    let before = OffsetDateTime::now_utc();
    let reply = app.order(&buyer, ticket).await;

    reply.assert_status(StatusCode::CREATED);
    let order = reply.order();
    assert_eq!(
        reply.json()["ticket"],
        json!({"id": ticket, "title": "Concert", "price": 19.99})
    );
    assert_eq!(
        (order.user_id, order.status.as_str(), order.version),
        (buyer.id, "created", 0)
    );
    let expected = before + time::Duration::seconds(900);
    assert!(
        (order.expires_at() - expected).abs() < CLOCK_SLACK,
        "expiresAt {} is not now + 900 s",
        order.expires_at
    );
    let row = app.order_row(order.id).await.expect("stored");
    assert_eq!(
        (
            row.user_id,
            row.ticket_id,
            row.status.as_str(),
            row.version,
            row.expires_at
        ),
        (buyer.id, ticket, "created", 0, order.expires_at())
    );

    let events = app.wait_for_order_events::<OrderCreated>(order.id, 1).await;
    assert_eq!(
        events,
        [json!({
            "id": order.id,
            "version": 0,
            "status": "created",
            "userId": buyer.id,
            "expiresAt": order.expires_at,
            "ticket": {"id": ticket, "price": 19.99},
        })]
    );
    app.settle().await;
    assert_eq!(app.outbox_count(Subject::OrderCreated).await, 1);
    assert_eq!(app.order_events::<OrderCreated>(order.id).await.len(), 1);
}

#[tokio::test]
async fn expires_at_is_now_plus_the_configured_window() {
    let app = spawn_app_with(|orders| ticketing_orders::Orders {
        window: Duration::from_secs(2),
        ..orders
    })
    .await;
    let buyer = app.user();
    let ticket = app.insert_ticket("Concert", 1000).await;

    let before = OffsetDateTime::now_utc();
    let order = app.create_order(&buyer, ticket).await;

    let expected = before + time::Duration::seconds(2);
    assert!(
        (order.expires_at() - expected).abs() < CLOCK_SLACK,
        "expiresAt {} is not now + 2 s",
        order.expires_at
    );
    assert_eq!(
        app.order_row(order.id).await.unwrap().expires_at,
        order.expires_at()
    );
    let events = app.wait_for_order_events::<OrderCreated>(order.id, 1).await;
    assert_eq!(events[0]["expiresAt"], json!(order.expires_at));
}

#[tokio::test]
async fn an_anonymous_order_is_401_before_any_other_check_and_stores_nothing() {
    let app = spawn_app().await;
    let ticket = app.insert_ticket("Concert", 1000).await;

    for body in [
        json!({"ticketId": ticket}),
        json!({}),
        json!({"ticketId": "not-an-id"}),
        json!({"ticketId": Uuid::now_v7()}),
    ] {
        app.post_order(None, &body)
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
    }
    app.send(
        Method::POST,
        "/api/orders",
        None,
        Some((Some("application/json"), "{not json".into())),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED);
    // A cookie that is not a valid session is no session.
    let forged = crate::helpers::User {
        id: Uuid::now_v7(),
        cookie: "session=not.a.jwt".into(),
    };
    app.order(&forged, ticket)
        .await
        .assert_error(StatusCode::UNAUTHORIZED);

    assert_eq!(app.order_count().await, 0);
    assert_eq!(app.outbox_count(Subject::OrderCreated).await, 0);
}

#[tokio::test]
async fn a_missing_or_invalid_ticket_id_is_400_naming_ticket_id() {
    let app = spawn_app().await;
    let buyer = app.user();

    for body in [
        json!({}),
        json!({"ticketId": null}),
        json!({"ticketId": ""}),
        json!({"ticketId": "abc"}),
        json!({"ticketId": "00000000-0000-0000-0000-00000000000g"}),
        json!({"ticketId": 5}),
        json!({"ticketId": [Uuid::now_v7()]}),
        json!({"ticketId": {"id": Uuid::now_v7()}}),
    ] {
        let reply = app.post_order(Some(&buyer), &body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.text
        );
        assert_eq!(reply.error_fields(), ["ticketId"], "{body}");
    }
    app.send(Method::POST, "/api/orders", Some(&buyer), None)
        .await
        .assert_invalid(&["ticketId"]);

    // A body that is not JSON at all is a 400 without a field.
    for (content_type, body) in [
        (Some("application/json"), "{\"ticketId\": "),
        (Some("text/plain"), "ticketId=1"),
        (None, "{}x"),
    ] {
        let reply = app
            .send(
                Method::POST,
                "/api/orders",
                Some(&buyer),
                Some((content_type, body.into())),
            )
            .await;
        reply.assert_error(StatusCode::BAD_REQUEST);
        assert!(reply.error_fields().is_empty(), "{}", reply.text);
    }

    assert_eq!(app.order_count().await, 0);
    assert_eq!(app.outbox_count(Subject::OrderCreated).await, 0);
}

#[tokio::test]
async fn an_unknown_ticket_is_404_and_stores_nothing() {
    let app = spawn_app().await;
    let buyer = app.user();
    app.insert_ticket("Known", 1000).await;

    let reply = app.order(&buyer, Uuid::now_v7()).await;

    reply.assert_error(StatusCode::NOT_FOUND);
    assert_eq!(app.order_count().await, 0);
    assert_eq!(app.outbox_count(Subject::OrderCreated).await, 0);
}

#[tokio::test]
async fn a_ticket_held_by_a_live_order_is_409_for_anyone_including_the_same_buyer() {
    let app = spawn_app().await;
    let (buyer, other) = (app.user(), app.user());
    let ticket = app.insert_ticket("Concert", 1000).await;
    let first = app.create_order(&buyer, ticket).await;

    let by_other = app.order(&other, ticket).await;
    let by_same = app.order(&buyer, ticket).await;

    by_other.assert_error(StatusCode::CONFLICT);
    by_same.assert_error(StatusCode::CONFLICT);
    let orders = app.orders_of_ticket(ticket).await;
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(
        (orders[0].id, orders[0].status.as_str()),
        (first.id, "created")
    );
    assert_eq!(app.outbox_count(Subject::OrderCreated).await, 1);
    // Neither refusal left an order behind in either buyer's list.
    assert!(app.list(Some(&other)).await.orders().is_empty());
    assert_eq!(app.list(Some(&buyer)).await.orders(), [first]);
}

#[tokio::test]
async fn a_sold_ticket_is_409_for_everyone() {
    let app = spawn_app().await;
    let (buyer, other) = (app.user(), app.user());
    let ticket = app.insert_ticket("Concert", 1000).await;
    let order = app.create_order(&buyer, ticket).await;
    app.publish(&payment_created(order.id)).await;
    app.wait_for_order(order.id, "paid", |row| row.status == "complete")
        .await;

    app.order(&other, ticket)
        .await
        .assert_error(StatusCode::CONFLICT);
    app.order(&buyer, ticket)
        .await
        .assert_error(StatusCode::CONFLICT);

    assert_eq!(app.orders_of_ticket(ticket).await.len(), 1);
    assert_eq!(app.outbox_count(Subject::OrderCreated).await, 1);
}

#[tokio::test]
async fn a_cancelled_order_frees_its_ticket_for_anyone_at_once() {
    let app = spawn_app().await;
    let (first_buyer, second_buyer) = (app.user(), app.user());
    let ticket = app.insert_ticket("Concert", 1000).await;
    let first = app.create_order(&first_buyer, ticket).await;

    app.cancel_order(&first_buyer, first.id).await;
    // No waiting for any event: the very next request may have it.
    let second = app.create_order(&second_buyer, ticket).await;

    assert_ne!(first.id, second.id);
    assert_eq!(
        (second.user_id, second.status.as_str(), second.version),
        (second_buyer.id, "created", 0)
    );
    let orders = app.orders_of_ticket(ticket).await;
    assert_eq!(
        orders
            .iter()
            .map(|o| (o.id, o.status.as_str()))
            .collect::<Vec<_>>(),
        [(first.id, "cancelled"), (second.id, "created")]
    );
    // And the first buyer could order it again too, once the second lets it go.
    app.cancel_order(&second_buyer, second.id).await;
    app.create_order(&first_buyer, ticket).await;
}
