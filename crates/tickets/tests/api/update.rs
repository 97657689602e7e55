//! `PUT /api/tickets/:id`: the owner edits a free ticket; everything else is refused in the
//! contract's order of checks (authentication, validation, existence, ownership, state) and
//! changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::json;
use ticketing_common::session::SessionKeys;
use ticketing_events::{Subject, TicketUpdated};
use uuid::Uuid;

use crate::helpers::TicketReply as _;
use crate::helpers::{TestApp, TicketBody, User, order_created, spawn_app, ticket_input};

/// A ticket reserved by an order, with the reservation handled and announced.
async fn reserved_ticket(app: &TestApp, seller: &User) -> (TicketBody, Uuid) {
    let ticket = app.create_ticket(seller, "Concert", 20).await;
    let order_id = Uuid::now_v7();
    app.publish(&order_created(&ticket, order_id)).await;
    app.wait_for_row(ticket.id, "reserved", |row| row.order_id == Some(order_id))
        .await;
    app.settle().await;
    (ticket, order_id)
}

#[tokio::test]
async fn the_owner_updates_a_ticket_and_the_version_grows_by_exactly_one() {
    let app = spawn_app().await;
    let seller = app.user();
    let ticket = app.create_ticket(&seller, "Concert", 20).await;

    let reply = app
        .put_ticket(
            Some(&seller),
            &ticket.id.to_string(),
            &ticket_input("  Opera  ", "35.50"),
        )
        .await;

    reply.assert_status(StatusCode::OK);
    let updated = reply.ticket();
    assert_eq!(
        updated,
        TicketBody {
            title: "Opera".into(),
            price: 35.5,
            version: 1,
            ..ticket.clone()
        }
    );
    let row = app.row(ticket.id).await.unwrap();
    assert_eq!(
        (
            row.title.as_str(),
            row.price_cents,
            row.version,
            row.order_id
        ),
        ("Opera", 3550, 1, None)
    );

    let second = app
        .put_ticket(
            Some(&seller),
            &ticket.id.to_string(),
            &ticket_input("Ballet", 40),
        )
        .await;
    second.assert_status(StatusCode::OK);
    assert_eq!(second.ticket().version, 2);
    assert_eq!(app.row(ticket.id).await.unwrap().version, 2);
}

#[tokio::test]
async fn an_update_publishes_ticket_updated_with_the_new_version() {
    let app = spawn_app().await;
    let seller = app.user();
    let ticket = app.create_ticket(&seller, "Concert", 20).await;

    app.put_ticket(
        Some(&seller),
        &ticket.id.to_string(),
        &ticket_input("Opera", 19.99),
    )
    .await
    .assert_status(StatusCode::OK);

    let events = app
        .wait_for_events::<TicketUpdated>(1, |event| event.data.id == ticket.id)
        .await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "ticket.updated");
    assert_eq!(
        serde_json::to_value(&events[0].data).unwrap(),
        json!({
            "id": ticket.id,
            "version": 1,
            "title": "Opera",
            "price": 19.99,
            "userId": seller.id,
            "orderId": null,
        })
    );
}

#[tokio::test]
async fn an_anonymous_update_is_401_even_for_an_unknown_ticket_or_an_invalid_body() {
    let app = spawn_app().await;
    let seller = app.user();
    let ticket = app.create_ticket(&seller, "Concert", 20).await;

    app.put_ticket(
        None,
        &Uuid::now_v7().to_string(),
        &ticket_input("Opera", 30),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED);
    app.put_ticket(None, "not-an-id", &json!({}))
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    app.put_ticket(None, &ticket.id.to_string(), &ticket_input("Opera", 30))
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    // A session signed with another key is no session.
    let forged = User {
        id: seller.id,
        cookie: format!(
            "session={}",
            SessionKeys::new(&[7u8; 32], false)
                .unwrap()
                .issue(seller.id, "seller@example.com")
                .unwrap()
        ),
    };
    app.put_ticket(
        Some(&forged),
        &ticket.id.to_string(),
        &ticket_input("Opera", 30),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED);

    let row = app.row(ticket.id).await.unwrap();
    assert_eq!((row.title.as_str(), row.version), ("Concert", 0));
}

#[tokio::test]
async fn a_signed_in_update_with_an_invalid_body_is_400_before_the_ticket_is_looked_up() {
    let app = spawn_app().await;
    let seller = app.user();
    let ticket = app.create_ticket(&seller, "Concert", 20).await;

    // Unknown ticket, invalid body: validation comes first.
    app.put_ticket(Some(&seller), &Uuid::now_v7().to_string(), &json!({}))
        .await
        .assert_invalid(&["price", "title"]);
    app.send(
        Method::PUT,
        &format!("/api/tickets/{}", Uuid::now_v7()),
        Some(&seller),
        None,
    )
    .await
    .assert_invalid(&["price", "title"]);
    // Someone else's ticket, invalid price: still validation first.
    app.put_ticket(
        Some(&app.user()),
        &ticket.id.to_string(),
        &ticket_input("Opera", 0),
    )
    .await
    .assert_invalid(&["price"]);
    // The owner's own ticket.
    app.put_ticket(
        Some(&seller),
        &ticket.id.to_string(),
        &ticket_input(&"x".repeat(201), 10),
    )
    .await
    .assert_invalid(&["title"]);
    app.send(
        Method::PUT,
        &format!("/api/tickets/{}", ticket.id),
        Some(&seller),
        Some((Some("application/json"), "{\"title\":".to_owned())),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST);

    let row = app.row(ticket.id).await.unwrap();
    assert_eq!(
        (row.title.as_str(), row.price_cents, row.version),
        ("Concert", 2000, 0)
    );
    assert_eq!(app.outbox_count(Subject::TicketUpdated).await, 0);
}

#[tokio::test]
async fn updating_an_unknown_ticket_is_404() {
    let app = spawn_app().await;
    let seller = app.user();

    app.put_ticket(
        Some(&seller),
        &Uuid::now_v7().to_string(),
        &ticket_input("Opera", 30),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND);
    app.put_ticket(Some(&seller), "not-a-uuid", &ticket_input("Opera", 30))
        .await
        .assert_error(StatusCode::NOT_FOUND);

    assert_eq!(app.ticket_count().await, 0);
    assert_eq!(app.outbox_count(Subject::TicketUpdated).await, 0);
}

#[tokio::test]
async fn another_user_cannot_update_a_ticket_and_nothing_changes() {
    let app = spawn_app().await;
    let (seller, stranger) = (app.user(), app.user());
    let ticket = app.create_ticket(&seller, "Concert", 20).await;

    let reply = app
        .put_ticket(
            Some(&stranger),
            &ticket.id.to_string(),
            &ticket_input("Mine now", 1),
        )
        .await;

    reply.assert_error(StatusCode::UNAUTHORIZED);
    let row = app.row(ticket.id).await.unwrap();
    assert_eq!(
        (
            row.title.as_str(),
            row.price_cents,
            row.user_id,
            row.version
        ),
        ("Concert", 2000, seller.id, 0)
    );
    assert_eq!(app.outbox_count(Subject::TicketUpdated).await, 0);
    assert_eq!(app.show(ticket.id).await, ticket);
}

#[tokio::test]
async fn a_reserved_ticket_cannot_be_edited_and_nothing_changes() {
    let app = spawn_app().await;
    let seller = app.user();
    let (ticket, order_id) = reserved_ticket(&app, &seller).await;

    let reply = app
        .put_ticket(
            Some(&seller),
            &ticket.id.to_string(),
            &ticket_input("Opera", 99),
        )
        .await;

    reply.assert_error(StatusCode::CONFLICT);
    let row = app.row(ticket.id).await.unwrap();
    assert_eq!(
        (
            row.title.as_str(),
            row.price_cents,
            row.version,
            row.order_id
        ),
        ("Concert", 2000, 1, Some(order_id))
    );
    // Only the reservation's event, none for the refused edit.
    assert_eq!(app.outbox_count(Subject::TicketUpdated).await, 1);
    let shown = app.show(ticket.id).await;
    assert_eq!((shown.title.as_str(), shown.version), ("Concert", 1));
}

#[tokio::test]
async fn a_stranger_editing_a_reserved_ticket_is_401_not_409() {
    let app = spawn_app().await;
    let seller = app.user();
    let (ticket, _) = reserved_ticket(&app, &seller).await;

    app.put_ticket(
        Some(&app.user()),
        &ticket.id.to_string(),
        &ticket_input("Opera", 99),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED);

    assert_eq!(app.row(ticket.id).await.unwrap().version, 1);
}
