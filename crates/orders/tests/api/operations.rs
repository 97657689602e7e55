//! What operators and client generators rely on: readiness covers orders' dependencies, and
//! the OpenAPI document describes every orders route.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{expiration_complete, spawn_app};

#[tokio::test]
async fn readiness_checks_the_orders_database_and_nats() {
    let app = spawn_app().await;

    let reply = app.get("/readyz").await;

    reply.assert_status(StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!({"ready": true, "checks": {"postgres:orders": "ok", "nats": "ok"}})
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_orders_route() {
    let app = spawn_app().await;

    let reply = app.get("/api/openapi.json").await;

    reply.assert_status(StatusCode::OK);
    let paths = &reply.json()["paths"];
    for (path, method, statuses) in [
        (
            "/api/orders",
            "post",
            &["201", "400", "401", "404", "409", "503"][..],
        ),
        ("/api/orders", "get", &["200", "401", "503"][..]),
        ("/api/orders/{id}", "get", &["200", "401", "404", "503"][..]),
        (
            "/api/orders/{id}",
            "delete",
            &["204", "401", "404", "409", "503"][..],
        ),
    ] {
        let operation = &paths[path][method];
        assert!(operation.is_object(), "{method} {path} missing: {paths}");
        let mut documented: Vec<&str> = operation["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        documented.sort_unstable();
        assert_eq!(documented, statuses, "{method} {path}");
    }
}

#[tokio::test]
async fn operators_see_the_status_and_replay_a_parked_event_once_its_cause_is_fixed() {
    let app = spawn_app().await;
    let operator = app.operator();
    // An expiry for an order orders does not have: parked at once (it can never apply).
    let order_id = uuid::Uuid::now_v7();
    app.publish(&expiration_complete(order_id)).await;
    let status = ticketing_common::testing::eventually(std::time::Duration::from_secs(10), || {
        let app = &app;
        let operator = &operator;
        async move {
            let reply = app
                .send(
                    Method::GET,
                    "/api/orders/admin/status",
                    Some(operator),
                    None,
                )
                .await;
            let body = reply.json();
            (body["parked"].as_array().is_some_and(|p| !p.is_empty())).then_some(body)
        }
    })
    .await
    .expect("the expiry was parked");

    assert_eq!(status["service"], "orders");
    assert_eq!(status["outboxBacklog"], json!(0));
    let consumers: Vec<&str> = status["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(consumers.len(), 6, "{consumers:?}");
    assert!(
        consumers.iter().all(|name| name.starts_with("orders")),
        "{consumers:?}"
    );
    let parked = &status["parked"][0];
    assert_eq!(parked["subject"], "expiration.complete");
    assert!(
        parked["error"]
            .as_str()
            .unwrap()
            .contains(&order_id.to_string())
    );
    let parked_id = parked["id"].as_str().unwrap().to_owned();
    let replay_path = format!("/api/orders/admin/parked/{parked_id}/replay");

    // Refused again while the cause stands; recorded either way.
    let again = app
        .send(Method::POST, &replay_path, Some(&operator), None)
        .await;
    again.assert_error(StatusCode::CONFLICT);
    // The cause fixed (the order exists, expired), the replay applies it and forgets it.
    let ticket = app.insert_ticket("Concert", 1000).await;
    sqlx::query(
        "INSERT INTO orders (id, user_id, ticket_id, status, expires_at)
         VALUES ($1, $2, $3, 'created', now() - interval '1 minute')",
    )
    .bind(order_id)
    .bind(uuid::Uuid::now_v7())
    .bind(ticket)
    .execute(&app.pool)
    .await
    .unwrap();
    let applied = app
        .send(Method::POST, &replay_path, Some(&operator), None)
        .await;
    applied.assert_status(StatusCode::OK);
    assert_eq!(applied.json()["outcome"], "applied");
    assert_eq!(app.order_state(order_id).await.0, "cancelled");

    let status = app
        .send(
            Method::GET,
            "/api/orders/admin/status",
            Some(&operator),
            None,
        )
        .await
        .json();
    assert_eq!(status["parked"], json!([]));
    let actions = status["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 2, "both replays are recorded: {actions:?}");
    assert!(actions.iter().all(|a| a["action"] == "replay"
        && a["operatorId"] == json!(operator.id)
        && a["operatorEmail"] == json!(ticketing_common::testing::OPERATOR_EMAIL.to_uppercase())
        && a["target"].as_str().unwrap().ends_with(&parked_id)));
    app.send(Method::POST, &replay_path, Some(&operator), None)
        .await
        .assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_operations_routes_are_401_anonymous_and_403_for_other_users() {
    let app = spawn_app().await;
    let replay = format!("/api/orders/admin/parked/{}/replay", uuid::Uuid::now_v7());
    for (method, path) in [
        (Method::GET, "/api/orders/admin/status"),
        (Method::POST, replay.as_str()),
    ] {
        app.send(method.clone(), path, None, None)
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        app.send(method, path, Some(&app.user()), None)
            .await
            .assert_error(StatusCode::FORBIDDEN);
    }
}
