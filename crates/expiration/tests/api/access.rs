//! Operators only: 401 anonymous, 403 for any other user, before the request is looked at.

use reqwest::{Method, StatusCode};

use crate::helpers::spawn_app;

#[tokio::test]
async fn only_operators_see_the_queue_and_act_on_its_jobs() {
    let app = spawn_app().await;
    let retried = app.failed_job("NATS said no").await;
    let discarded = app.failed_job("NATS said no").await;
    let promoted = app.schedule(3_600_000).await;
    let routes = [
        (Method::GET, "/api/queues".to_owned(), StatusCode::OK),
        (Method::GET, "/api/queues/expiration".into(), StatusCode::OK),
        (
            Method::GET,
            "/api/queues/expiration/lateness?minutes=5".into(),
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/api/queues/expiration/jobs?state=failed".into(),
            StatusCode::OK,
        ),
        (
            Method::POST,
            format!("/api/queues/expiration/jobs/{retried}/retry"),
            StatusCode::OK,
        ),
        (
            Method::POST,
            format!("/api/queues/expiration/jobs/{promoted}/promote"),
            StatusCode::OK,
        ),
        (
            Method::DELETE,
            format!("/api/queues/expiration/jobs/{discarded}"),
            StatusCode::NO_CONTENT,
        ),
    ];
    let buyer = app.user();

    for (method, path, _) in &routes {
        app.send(method.clone(), path, None, None)
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        app.send(method.clone(), path, Some(&buyer), None)
            .await
            .assert_error(StatusCode::FORBIDDEN);
    }
    assert_eq!(
        app.counts().await,
        [1, 0, 2, 0],
        "the refused actions changed nothing"
    );
    assert!(app.actions().await.is_empty(), "and recorded nothing");
    let operator = app.operator();
    for (method, path, status) in &routes {
        let reply = app.send(method.clone(), path, Some(&operator), None).await;
        assert_eq!(reply.status, *status, "{method} {path}: {}", reply.text);
    }
    assert_eq!(
        app.counts().await,
        [2, 0, 0, 0],
        "retried and promoted are due, one discarded"
    );
}

#[tokio::test]
async fn authentication_and_the_operator_check_come_before_validation() {
    let app = spawn_app().await;
    let buyer = app.user();

    for path in [
        "/api/queues/expiration/jobs?state=bogus&limit=0",
        "/api/queues/expiration/jobs",
        "/api/queues/expiration/lateness?minutes=999",
    ] {
        app.get(path).await.assert_error(StatusCode::UNAUTHORIZED);
        app.get_as(path, &buyer)
            .await
            .assert_error(StatusCode::FORBIDDEN);
    }
    for (method, path) in [
        (Method::POST, "/api/queues/expiration/jobs/not-a-job/retry"),
        (
            Method::POST,
            "/api/queues/expiration/jobs/not-a-job/promote",
        ),
        (Method::DELETE, "/api/queues/expiration/jobs/not-a-job"),
    ] {
        app.send(method.clone(), path, None, None)
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        app.send(method, path, Some(&buyer), None)
            .await
            .assert_error(StatusCode::FORBIDDEN);
    }
}
