//! `GET /api/orders` and `GET /api/orders/:id`: a buyer sees their own orders and nobody
//! else's; an anonymous caller sees nothing.

use reqwest::{Method, StatusCode};
use uuid::Uuid;

use crate::helpers::OrderReply as _;
use crate::helpers::{User, spawn_app};

#[tokio::test]
async fn the_list_holds_only_the_callers_orders_newest_first_with_their_current_status() {
    let app = spawn_app().await;
    let (buyer, other) = (app.user(), app.user());
    let tickets = [
        app.insert_ticket("One", 1000).await,
        app.insert_ticket("Two", 2050).await,
        app.insert_ticket("Three", 3000).await,
    ];
    let mut mine = Vec::new();
    for ticket in &tickets {
        mine.push(app.create_order(&buyer, *ticket).await);
    }
    let theirs = app
        .create_order(&other, app.insert_ticket("Four", 4000).await)
        .await;
    app.cancel_order(&buyer, mine[1].id).await;

    let reply = app.list(Some(&buyer)).await;

    reply.assert_status(StatusCode::OK);
    let listed = reply.orders();
    assert_eq!(
        listed
            .iter()
            .map(|o| (o.id, o.ticket.title.as_str(), o.status.as_str(), o.version))
            .collect::<Vec<_>>(),
        [
            (mine[2].id, "Three", "created", 0),
            (mine[1].id, "Two", "cancelled", 1),
            (mine[0].id, "One", "created", 0),
        ]
    );
    assert_eq!(listed[1].ticket.price, 20.5);
    assert!(listed.iter().all(|o| o.user_id == buyer.id));
    assert_eq!(app.list(Some(&other)).await.orders(), [theirs]);
    let newcomer = app.list(Some(&app.user())).await;
    newcomer.assert_status(StatusCode::OK);
    assert_eq!(newcomer.json(), serde_json::json!([]));
}

#[tokio::test]
async fn the_owner_sees_an_order_and_anyone_else_gets_401() {
    let app = spawn_app().await;
    let (buyer, other) = (app.user(), app.user());
    let order = app
        .create_order(&buyer, app.insert_ticket("Concert", 1999).await)
        .await;

    let mine = app.show(Some(&buyer), &order.id.to_string()).await;
    let theirs = app.show(Some(&other), &order.id.to_string()).await;

    mine.assert_status(StatusCode::OK);
    assert_eq!(mine.order(), order);
    theirs.assert_error(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_unknown_or_malformed_order_id_is_404_and_never_a_server_error() {
    let app = spawn_app().await;
    let buyer = app.user();
    app.create_order(&buyer, app.insert_ticket("Concert", 1000).await)
        .await;

    for id in [
        Uuid::now_v7().to_string(),
        Uuid::nil().to_string(),
        "abc".into(),
        "123".into(),
        "00000000-0000-0000-0000-00000000000g".into(),
        "%20".into(),
        "%00".into(),
        // Not even UTF-8: axum's own path extractor answers this in plain text.
        "%FF".into(),
        "%C3%28".into(),
        "'%20OR%201=1--".into(),
        "f".repeat(300),
    ] {
        let shown = app.show(Some(&buyer), &id).await;
        assert_eq!(
            shown.status,
            StatusCode::NOT_FOUND,
            "GET {id:?}: {}",
            shown.text
        );
        shown.error();
        let cancelled = app.cancel(Some(&buyer), &id).await;
        assert_eq!(
            cancelled.status,
            StatusCode::NOT_FOUND,
            "DELETE {id:?}: {}",
            cancelled.text
        );
        cancelled.error();
    }
}

#[tokio::test]
async fn an_anonymous_caller_gets_401_on_every_orders_route_whatever_the_id() {
    let app = spawn_app().await;
    let buyer = app.user();
    let order = app
        .create_order(&buyer, app.insert_ticket("Concert", 1000).await)
        .await;
    let forged = User {
        id: buyer.id,
        cookie: "session=eyJhbGciOiJIUzI1NiJ9.e30.forged".into(),
    };

    for user in [None, Some(&forged)] {
        app.list(user).await.assert_error(StatusCode::UNAUTHORIZED);
        for id in [
            order.id.to_string(),
            Uuid::now_v7().to_string(),
            "abc".into(),
        ] {
            app.show(user, &id)
                .await
                .assert_error(StatusCode::UNAUTHORIZED);
            app.cancel(user, &id)
                .await
                .assert_error(StatusCode::UNAUTHORIZED);
        }
        app.send(Method::POST, "/api/orders", user, None)
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
    }

    assert_eq!(app.order_state(order.id).await, ("created".into(), 0));
}

#[tokio::test]
async fn an_operator_may_read_any_order_but_not_list_it_as_theirs() {
    let app = spawn_app().await;
    let (buyer, operator) = (app.user(), app.operator());
    let order = app
        .create_order(&buyer, app.insert_ticket("Concert", 1999).await)
        .await;

    let shown = app.show(Some(&operator), &order.id.to_string()).await;

    shown.assert_status(StatusCode::OK);
    assert_eq!(shown.order(), order);
    assert_eq!(app.list(Some(&operator)).await.orders(), []);
    // An operator still cannot cancel someone else's order.
    app.cancel(Some(&operator), &order.id.to_string())
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_order_keeps_the_price_it_was_created_at_whatever_the_seller_changes_later() {
    let app = spawn_app().await;
    let buyer = app.user();
    let ticket = app.seed_ticket("Concert", 2500).await;
    let order = app.create_order(&buyer, ticket).await;

    // The seller's new price reaches the replica after the order was placed.
    app.publish(&crate::helpers::ticket_updated(ticket, 1, "Concert", 9900))
        .await;
    app.wait_for_ticket(ticket, "repriced", |row| row.price_cents == 9900)
        .await;

    let shown = app.show(Some(&buyer), &order.id.to_string()).await.order();
    assert_eq!(shown.ticket.price, 25.0);
    assert_eq!(app.list(Some(&buyer)).await.orders()[0].ticket.price, 25.0);
    let created = app
        .wait_for_order_events::<ticketing_events::OrderCreated>(order.id, 1)
        .await;
    assert_eq!(created[0]["ticket"]["price"], serde_json::json!(25));
}
