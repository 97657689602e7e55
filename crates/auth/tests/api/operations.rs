//! What every process serves around auth's routes: 404 body, health, readiness, OpenAPI,
//! metrics.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Reply, spawn_app};

#[tokio::test]
async fn an_unknown_route_is_a_404_in_the_error_body() {
    let app = spawn_app().await;

    let get = app.get(&app.client, "/api/users/nope").await;
    let post = app
        .post_json(&app.client, "/api/users/nope", &json!({}))
        .await;

    get.assert_status(StatusCode::NOT_FOUND);
    get.error();
    post.assert_status(StatusCode::NOT_FOUND);
    post.error();
}

#[tokio::test]
async fn a_known_route_with_another_method_is_answered_in_the_error_body() {
    let app = spawn_app().await;

    let get_signup = app.get(&app.client, "/api/users/signup").await;
    let delete_health =
        Reply::read(app.client.delete(app.url("/healthz")).send().await.unwrap()).await;

    for reply in [get_signup, delete_health] {
        assert!(reply.status.is_client_error(), "{}", reply.status);
        reply.error();
    }
}

#[tokio::test]
async fn healthz_answers_200() {
    let app = spawn_app().await;

    let reply = app.get(&app.client, "/healthz").await;

    reply.assert_status(StatusCode::OK);
    assert_eq!(reply.json(), json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_answers_200_with_the_postgres_check_ok() {
    let app = spawn_app().await;

    let reply = app.get(&app.client, "/readyz").await;

    reply.assert_status(StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!({"ready": true, "checks": {"postgres:auth": "ok"}})
    );
}

#[tokio::test]
async fn readyz_answers_503_when_the_database_is_unreachable() {
    let app = spawn_app().await;
    // Closing the app's pool cuts auth off from the database without touching the server.
    app.pool.close().await;

    let reply = app.get(&app.client, "/readyz").await;

    reply.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    let body = reply.json();
    assert_eq!(body["ready"], json!(false), "{body}");
    assert_eq!(
        body["checks"]["postgres:auth"]["error"],
        json!("not reachable"),
        "{body}"
    );
    assert!(
        !reply.text.contains("pool"),
        "the dependency's own error text stays in the log: {body}"
    );
}

#[tokio::test]
async fn the_openapi_document_describes_the_user_routes() {
    let app = spawn_app().await;

    let reply = app.get(&app.client, "/api/openapi.json").await;

    reply.assert_status(StatusCode::OK);
    let document = reply.json();
    let paths = document["paths"].as_object().expect("paths");
    assert!(paths["/api/users/signup"]["post"].is_object(), "{document}");
    assert!(paths["/api/users/signin"]["post"].is_object());
    assert!(paths["/api/users/signout"]["post"].is_object());
    assert!(paths["/api/users/currentuser"]["get"].is_object());
}

/// The sum of `http_requests_total` samples carrying all of `labels`.
fn requests_total(metrics: &str, labels: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|line| {
            line.starts_with("http_requests_total{")
                && labels.iter().all(|label| line.contains(label))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app().await;
    let labels = [
        r#"method="GET""#,
        r#"route="/api/users/currentuser""#,
        r#"status="200""#,
    ];
    let before = requests_total(&app.get(&app.client, "/metrics").await.text, &labels);

    app.current_user(&app.client).await;

    let reply = app.get(&app.client, "/metrics").await;
    reply.assert_status(StatusCode::OK);
    assert!(reply.text.contains("http_requests_total"), "{}", reply.text);
    let after = requests_total(&reply.text, &labels);
    assert!(
        after >= before + 1.0,
        "http_requests_total for currentuser went from {before} to {after}"
    );
}
