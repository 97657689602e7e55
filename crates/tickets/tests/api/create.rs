//! `POST /api/tickets`: who may list a ticket, what a valid one is, and what it announces.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ticketing_events::{Subject, TicketCreated};

use crate::helpers::TicketReply as _;
use crate::helpers::{spawn_app, ticket_input};

#[tokio::test]
async fn a_signed_in_user_creates_a_ticket_and_gets_201_with_the_whole_ticket() {
    let app = spawn_app().await;
    let user = app.user();

    let reply = app
        .post_ticket(Some(&user), &ticket_input("Concert", 20))
        .await;

    reply.assert_status(StatusCode::CREATED);
    let ticket = reply.ticket();
    assert_eq!(ticket.title, "Concert");
    assert_eq!(reply.json()["price"], json!(20));
    assert_eq!(ticket.user_id, user.id);
    assert_eq!(ticket.version, 0);
    assert_eq!(reply.json()["orderId"], Value::Null);
    let row = app.row(ticket.id).await.expect("stored");
    assert_eq!(
        (
            row.title.as_str(),
            row.price_cents,
            row.user_id,
            row.version,
            row.order_id
        ),
        ("Concert", 2000, user.id, 0, None)
    );
}

#[tokio::test]
async fn the_title_is_stored_and_returned_trimmed() {
    let app = spawn_app().await;
    let user = app.user();

    let ticket = app.create_ticket(&user, "  \t Concert  \n", 10).await;

    assert_eq!(ticket.title, "Concert");
    assert_eq!(app.row(ticket.id).await.unwrap().title, "Concert");
}

#[tokio::test]
async fn an_anonymous_create_is_401_and_stores_nothing() {
    let app = spawn_app().await;

    let reply = app.post_ticket(None, &ticket_input("Concert", 20)).await;

    reply.assert_error(StatusCode::UNAUTHORIZED);
    assert_eq!(app.ticket_count().await, 0);
    assert_eq!(app.outbox_count(Subject::TicketCreated).await, 0);
}

#[tokio::test]
async fn an_empty_object_or_an_empty_body_is_400_naming_both_title_and_price() {
    let app = spawn_app().await;
    let user = app.user();

    app.post_ticket(Some(&user), &json!({}))
        .await
        .assert_invalid(&["price", "title"]);
    app.send(Method::POST, "/api/tickets", Some(&user), None)
        .await
        .assert_invalid(&["price", "title"]);
    app.send(
        Method::POST,
        "/api/tickets",
        Some(&user),
        Some((Some("application/json"), String::new())),
    )
    .await
    .assert_invalid(&["price", "title"]);
    app.post_ticket(Some(&user), &json!({"title": "   ", "price": null}))
        .await
        .assert_invalid(&["price", "title"]);

    assert_eq!(app.ticket_count().await, 0);
}

#[tokio::test]
async fn a_title_longer_than_200_characters_is_400_naming_title() {
    let app = spawn_app().await;
    let user = app.user();

    app.post_ticket(Some(&user), &ticket_input(&"x".repeat(201), 10))
        .await
        .assert_invalid(&["title"]);
    assert_eq!(app.ticket_count().await, 0);

    // Characters, not bytes: 200 two-byte characters are fine.
    let longest = app.create_ticket(&user, &"é".repeat(200), 10).await;
    assert_eq!(longest.title.chars().count(), 200);
}

#[tokio::test]
async fn a_price_that_is_zero_negative_too_high_too_precise_or_not_a_number_is_400_naming_price() {
    let app = spawn_app().await;
    let user = app.user();

    for price in [
        json!(0),
        json!(0.00),
        json!(-5),
        json!(-0.01),
        json!(1_000_000.01),
        json!(2_000_000),
        json!(10.001),
        json!("10.001"),
        json!("abc"),
        json!("12abc"),
        json!(""),
        json!(true),
        json!([10]),
        json!({"amount": 10}),
    ] {
        let reply = app
            .post_ticket(Some(&user), &json!({"title": "Concert", "price": price}))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "price {price}: {}",
            reply.text
        );
        assert_eq!(
            reply.error_fields(),
            ["price"],
            "price {price}: {}",
            reply.text
        );
    }

    assert_eq!(app.ticket_count().await, 0);
}

#[tokio::test]
async fn the_highest_and_lowest_prices_are_accepted() {
    let app = spawn_app().await;
    let user = app.user();

    let highest = app.create_ticket(&user, "Gala", 1_000_000).await;
    let lowest = app.create_ticket(&user, "Raffle", 0.01).await;

    assert_eq!(app.row(highest.id).await.unwrap().price_cents, 100_000_000);
    assert_eq!(app.row(lowest.id).await.unwrap().price_cents, 1);
}

#[tokio::test]
async fn a_numeric_string_price_is_accepted_and_returned_as_a_number() {
    let app = spawn_app().await;
    let user = app.user();

    let reply = app
        .post_ticket(Some(&user), &json!({"title": "Concert", "price": "25.50"}))
        .await;

    reply.assert_status(StatusCode::CREATED);
    assert_eq!(reply.json()["price"], json!(25.5));
    let ticket = reply.ticket();
    assert_eq!(app.row(ticket.id).await.unwrap().price_cents, 2550);
}

#[tokio::test]
async fn prices_are_stored_exactly_as_integer_cents() {
    let app = spawn_app().await;
    let user = app.user();

    for (price, cents) in [
        (json!(19.99), 1999),
        (json!(0.1), 10),
        (json!(0.29), 29),
        (json!(1.15), 115),
        (json!(999_999.99), 99_999_999),
    ] {
        let reply = app
            .post_ticket(Some(&user), &json!({"title": "Concert", "price": price}))
            .await;
        reply.assert_status(StatusCode::CREATED);
        assert_eq!(reply.json()["price"], price);
        let id = reply.ticket().id;
        assert_eq!(
            app.row(id).await.unwrap().price_cents,
            cents,
            "price {price}"
        );
    }
}

#[tokio::test]
async fn malformed_json_is_400_with_the_error_body() {
    let app = spawn_app().await;
    let user = app.user();

    for body in [
        r#"{"title": "Concert", "price": "#,
        "{title: 'x'}",
        r#"{"title": "a"} x"#,
    ] {
        let reply = app
            .send(
                Method::POST,
                "/api/tickets",
                Some(&user),
                Some((Some("application/json"), body.to_owned())),
            )
            .await;
        reply.assert_error(StatusCode::BAD_REQUEST);
    }
    // Not JSON at all, by content type.
    app.send(
        Method::POST,
        "/api/tickets",
        Some(&user),
        Some((
            Some("text/plain"),
            r#"{"title": "a", "price": 1}"#.to_owned(),
        )),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST);
    // The wrong type for the title names it.
    app.post_ticket(Some(&user), &json!({"title": 5, "price": 10}))
        .await
        .assert_invalid(&["title"]);

    assert_eq!(app.ticket_count().await, 0);
}

#[tokio::test]
async fn creating_a_ticket_publishes_ticket_created_with_version_0() {
    let app = spawn_app().await;
    let user = app.user();

    let ticket = app.create_ticket(&user, "Concert", 19.99).await;

    let events = app
        .wait_for_events::<TicketCreated>(1, |event| event.data.id == ticket.id)
        .await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.kind, "ticket.created");
    assert_eq!(
        serde_json::to_value(&event.data).unwrap(),
        json!({
            "id": ticket.id,
            "version": 0,
            "title": "Concert",
            "price": 19.99,
            "userId": user.id,
        })
    );
    assert_eq!(app.outbox_count(Subject::TicketCreated).await, 1);
}
