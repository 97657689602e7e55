//! What operators and client generators rely on: readiness covers orders' dependencies, and
//! the OpenAPI document describes every orders route.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

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
