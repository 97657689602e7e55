//! What a hostile or careless client sends never makes a 5xx: control characters in a
//! title, ids that are not ids, a saturated database pool; and the seed report's singular
//! list path answers like the plural.

use std::time::Duration;

use reqwest::{StatusCode, header::RETRY_AFTER};
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with_pool};

#[tokio::test]
async fn titles_with_control_or_bidi_override_characters_are_400_naming_title() {
    let app = spawn_app().await;
    let seller = app.user();
    let listed = app.create_ticket(&seller, "Concert", 10).await;
    for title in [
        "Con\u{0}cert",
        "Con\ncert",
        "\u{202E}trecnoC",
        "Con\u{85}cert",
        "\u{7f}",
    ] {
        let body = json!({"title": title, "price": 10});
        let created = app.post_ticket(Some(&seller), &body).await;
        let updated = app
            .put_ticket(Some(&seller), &listed.id.to_string(), &body)
            .await;

        for reply in [created, updated] {
            reply.assert_status(StatusCode::BAD_REQUEST);
            assert_eq!(reply.error_fields(), ["title"], "{title:?}: {}", reply.text);
        }
    }
}

#[tokio::test]
async fn ids_that_are_not_ids_are_404_in_the_error_body() {
    let app = spawn_app().await;
    let seller = app.user();
    let body = json!({"title": "Concert", "price": 10});
    for id in ["%FF", "not-an-id", "%00", "%E2%80%AE"] {
        let path = format!("/api/tickets/{id}");
        let shown = app.get(&path).await;
        let updated = app.put_ticket(Some(&seller), id, &body).await;

        for reply in [shown, updated] {
            reply.assert_status(StatusCode::NOT_FOUND);
            assert_eq!(
                reply.error().errors[0].message,
                "Ticket not found",
                "{path}"
            );
        }
    }
    // Authentication still comes first.
    app.put_ticket(None, "%FF", &body)
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_starved_database_pool_answers_503_with_retry_after() {
    let app = spawn_app_with_pool(1, Duration::from_millis(300)).await;
    let seller = app.user();
    let _held = app
        .pool
        .acquire()
        .await
        .expect("the pool's only connection");

    let read = app
        .get(&format!("/api/tickets/{}", uuid::Uuid::now_v7()))
        .await;
    let write = app
        .post_ticket(Some(&seller), &json!({"title": "Concert", "price": 10}))
        .await;

    for reply in [read, write] {
        reply.assert_status(StatusCode::SERVICE_UNAVAILABLE);
        reply.error();
        assert_eq!(reply.headers[RETRY_AFTER], "1");
    }
}

#[tokio::test]
async fn the_singular_list_path_answers_like_the_plural() {
    let app = spawn_app().await;
    let seller = app.user();
    for n in 0..3 {
        app.create_ticket(&seller, &format!("Show {n}"), 10).await;
    }

    // What the plural answers: the page (3 tickets, then 2), and a refused limit.
    for (query, expected) in [("", Some(3)), ("?limit=2", Some(2)), ("?limit=0", None)] {
        let plural = app.get(&format!("/api/tickets{query}")).await;
        match expected {
            Some(n) => {
                plural.assert_status(StatusCode::OK);
                assert_eq!(plural.json().as_array().map(Vec::len), Some(n), "{query}");
            }
            None => plural.assert_error(StatusCode::BAD_REQUEST),
        }
        let singular = app.get(&format!("/api/ticket{query}")).await;
        assert_eq!(
            (singular.status, &singular.text),
            (plural.status, &plural.text),
            "{query}"
        );
    }
}
