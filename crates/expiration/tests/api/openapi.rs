//! The component as `serve expiration` and `up` build it serves the queue's routes beside
//! the operators' status, and the OpenAPI document describes them.

use std::time::Duration;

use reqwest::StatusCode;
use ticketing_common::testing::{
    RedisKeys, TestBus, TestServer, api::ApiClient, redis_url, session_keys, unique_namespace,
};
use ticketing_expiration::queue::Queue;

#[tokio::test]
async fn the_component_serves_and_documents_the_queue_routes() {
    let namespace = unique_namespace();
    let _keys = RedisKeys::of(&redis_url(), &namespace);
    let bus = TestBus::create(&namespace).await;
    let queue = Queue::connect(
        &redis_url(),
        namespace.redis_prefix(),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let server = TestServer::start(
        vec![ticketing_expiration::component(queue, &bus.bus, 1)],
        session_keys(),
    )
    .await;
    let api = ApiClient::new(server.url(""), session_keys());
    let operator = api.operator();

    let document = api.get("/api/openapi.json").await.json();
    let listed = api
        .send(reqwest::Method::GET, "/api/queues", Some(&operator), None)
        .await;
    let status = api
        .send(
            reqwest::Method::GET,
            "/api/queues/admin/status",
            Some(&operator),
            None,
        )
        .await;

    for (path, method, statuses) in [
        ("/api/queues", "get", &["200", "401", "403"][..]),
        ("/api/queues/expiration", "get", &["200", "401", "403"]),
        (
            "/api/queues/expiration/lateness",
            "get",
            &["200", "400", "401", "403"],
        ),
        (
            "/api/queues/expiration/jobs",
            "get",
            &["200", "400", "401", "403"],
        ),
        (
            "/api/queues/expiration/jobs/{id}/retry",
            "post",
            &["200", "401", "403", "404", "409"],
        ),
        (
            "/api/queues/expiration/jobs/{id}/promote",
            "post",
            &["200", "401", "403", "404", "409"],
        ),
        (
            "/api/queues/expiration/jobs/{id}",
            "delete",
            &["204", "401", "403", "404", "409"],
        ),
    ] {
        let operation = &document["paths"][path][method];
        for status in statuses {
            assert!(
                operation["responses"][status].is_object(),
                "{method} {path} documents no {status}: {operation}"
            );
        }
    }
    let state = document["paths"]["/api/queues/expiration/jobs"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "state")
        .cloned()
        .unwrap();
    assert_eq!(state["required"], true, "{state}");
    assert_eq!(
        state["schema"]["enum"],
        serde_json::json!(["delayed", "active", "failed"]),
        "{state}"
    );
    listed.assert_status(StatusCode::OK);
    status.assert_status(StatusCode::OK);
    assert_eq!(status.json()["service"], "expiration");
}
