//! `GET /api/tickets/:id`: any ticket by id, for anyone; 404 for anything else.

use reqwest::StatusCode;
use uuid::Uuid;

use crate::helpers::TicketReply as _;
use crate::helpers::spawn_app;

#[tokio::test]
async fn an_existing_ticket_is_shown_to_anyone_without_a_session() {
    let app = spawn_app().await;
    let seller = app.user();
    let created = app.create_ticket(&seller, "Concert", 19.99).await;

    let reply = app.get(&format!("/api/tickets/{}", created.id)).await;

    reply.assert_status(StatusCode::OK);
    let shown = reply.ticket();
    assert_eq!(shown, created);
    assert_eq!(shown.user_id, seller.id);
    assert_eq!(shown.version, 0);
    assert_eq!(shown.order_id, None);
    // A second read (now from the cache) answers the same.
    assert_eq!(app.show(created.id).await, created);
}

#[tokio::test]
async fn an_unknown_ticket_id_is_404_with_the_error_body() {
    let app = spawn_app().await;
    let seller = app.user();
    app.create_ticket(&seller, "Concert", 10).await;

    let reply = app.get(&format!("/api/tickets/{}", Uuid::now_v7())).await;

    reply.assert_error(StatusCode::NOT_FOUND);
    // Not found is not cached as anything: asking again is still 404.
    app.get(&format!("/api/tickets/{}", Uuid::nil()))
        .await
        .assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_malformed_ticket_id_is_404_and_never_a_server_error() {
    let app = spawn_app().await;

    for id in [
        "abc",
        "123",
        "not-a-uuid-at-all",
        "00000000-0000-0000-0000-00000000000g",
        "%20",
        "%00",
        "'%20OR%201=1--",
        &"f".repeat(300),
    ] {
        let reply = app.get(&format!("/api/tickets/{id}")).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "id {id:?}: {}",
            reply.text
        );
        reply.error();
    }
}
