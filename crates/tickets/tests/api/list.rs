//! `GET /api/tickets`: the free tickets, newest first, in pages.

use std::collections::HashSet;

use reqwest::StatusCode;
use ticketing_events::Subject;
use uuid::Uuid;

use crate::helpers::{order_created, spawn_app};

#[tokio::test]
async fn the_list_shows_every_free_ticket_newest_first_to_anyone() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user(), app.user());
    let mut created = Vec::new();
    for (n, seller) in [&alice, &bob, &alice, &bob].into_iter().enumerate() {
        created.push(
            app.create_ticket(seller, &format!("Show {n}"), 10 + n as i64)
                .await,
        );
    }

    let listed = app.list("").await;

    created.reverse();
    assert_eq!(listed, created);
}

#[tokio::test]
async fn an_empty_list_is_an_empty_array() {
    let app = spawn_app().await;

    let reply = app.get("/api/tickets").await;

    reply.assert_status(StatusCode::OK);
    assert_eq!(reply.json(), serde_json::json!([]));
}

#[tokio::test]
async fn limit_and_before_page_through_all_tickets_without_overlap() {
    let app = spawn_app().await;
    let seller = app.user();
    let mut created = Vec::new();
    for n in 0..7 {
        created.push(
            app.create_ticket(&seller, &format!("Show {n}"), 10)
                .await
                .id,
        );
    }
    created.reverse(); // newest first

    let mut walked: Vec<Uuid> = Vec::new();
    let mut pages = Vec::new();
    let mut query = "?limit=3".to_owned();
    loop {
        let page = app.list(&query).await;
        assert!(page.len() <= 3, "page longer than the limit: {page:?}");
        pages.push(page.len());
        let Some(last) = page.last() else { break };
        query = format!("?limit=3&before={}", last.id);
        walked.extend(page.iter().map(|t| t.id));
    }

    assert_eq!(pages, [3, 3, 1, 0]);
    assert_eq!(walked, created, "every ticket once, newest first");
    assert_eq!(walked.iter().collect::<HashSet<_>>().len(), walked.len());
    // `before` alone uses the default limit; `limit` at its maximum is fine.
    assert_eq!(app.list(&format!("?before={}", created[1])).await.len(), 5);
    assert_eq!(app.list("?limit=1000").await.len(), 7);
    assert_eq!(
        app.list("?limit=1")
            .await
            .iter()
            .map(|t| t.id)
            .collect::<Vec<_>>(),
        [created[0]]
    );
}

#[tokio::test]
async fn an_invalid_limit_or_before_is_400_naming_the_parameter() {
    let app = spawn_app().await;

    for (query, field) in [
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
        ("?limit=-1", "limit"),
        ("?limit=abc", "limit"),
        ("?limit=", "limit"),
        ("?limit=2.5", "limit"),
        ("?limit=99999999999999999999", "limit"),
        ("?before=notauuid", "before"),
        ("?before=", "before"),
    ] {
        let reply = app.get(&format!("/api/tickets{query}")).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            reply.text
        );
        assert_eq!(reply.error_fields(), [field], "{query}: {}", reply.text);
    }
    app.get("/api/tickets?limit=0&before=x")
        .await
        .assert_invalid(&["before", "limit"]);
}

#[tokio::test]
async fn a_reserved_ticket_leaves_the_list_but_is_still_shown_by_id() {
    let app = spawn_app().await;
    let seller = app.user();
    let older = app.create_ticket(&seller, "Older", 10).await;
    let reserved = app.create_ticket(&seller, "Reserved", 20).await;
    let newer = app.create_ticket(&seller, "Newer", 30).await;
    let order_id = Uuid::now_v7();

    app.publish(&order_created(&reserved, order_id)).await;
    app.wait_for_row(reserved.id, "reserved", |row| {
        row.order_id == Some(order_id)
    })
    .await;
    app.wait_until_handled(Subject::OrderCreated).await;

    let listed: Vec<Uuid> = app.list("").await.iter().map(|t| t.id).collect();
    assert_eq!(listed, [newer.id, older.id]);
    let shown = app.show(reserved.id).await;
    assert_eq!(shown.order_id, Some(order_id));
    assert_eq!(shown.version, 1);
    // Paging skips it too.
    let page: Vec<Uuid> = app
        .list(&format!("?before={}", newer.id))
        .await
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(page, [older.id]);
}
