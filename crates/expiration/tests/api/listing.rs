//! `GET /api/queues/expiration/jobs?state=...`: each state's jobs, soonest first, paged,
//! with their attempts and last error; bad queries are 400s naming the field.

use std::time::Duration;

use reqwest::StatusCode;
use ticketing_expiration::worker::now_ms;

use crate::helpers::{Scripted, WAIT, ids, ms, spawn_app};

#[tokio::test]
async fn delayed_jobs_are_listed_soonest_first_and_paged() {
    let app = spawn_app().await;
    let third = app.schedule(3 * 3_600_000).await;
    let first = app.schedule(3_600_000).await;
    let second = app.schedule(2 * 3_600_000).await;

    let all = app.jobs("state=delayed").await;
    let page = app.jobs("state=delayed&limit=1&offset=1").await;
    let two = app.jobs("state=delayed&limit=2").await;
    let past_the_end = app.jobs("state=delayed&offset=3").await;

    assert_eq!(ids(&all), [first, second, third]);
    let job = &all[0];
    assert_eq!(job["orderId"], job["id"], "a job's id is its order's id");
    assert_eq!(job["attempts"], 0);
    assert!(
        job["lastError"].is_null() && job["failedAt"].is_null(),
        "{job}"
    );
    let due = ms(&job["dueAt"]);
    assert!(
        (due - (now_ms() + 3_600_000)).abs() < 5_000,
        "due in an hour: {job}"
    );
    assert_eq!(ids(&page), [second]);
    assert_eq!(ids(&two), [first, second]);
    assert!(past_the_end.is_empty());
    assert!(app.jobs("state=failed").await.is_empty());
    assert!(app.jobs("state=active").await.is_empty());
}

#[tokio::test]
async fn failed_active_and_retrying_jobs_show_their_attempts_and_last_error() {
    let app = spawn_app().await;
    let failed_job = app.failed_job("publish refused: stream not found").await;
    let retrying = app.schedule(0).await;
    let held = app.schedule(0).await;
    let fire = Scripted::default().failing(retrying).holding(held);
    // Up to 3 tries, the second a minute after the first (long after the test).
    let replica = app.replica().await.with_retries(3, Duration::from_secs(60));
    let _worker = app.start_worker(&replica, fire.clone());
    app.wait_for_counts([1, 1, 1, 0]).await;

    let failed = app.jobs("state=failed").await;
    let active = app.jobs("state=active").await;
    let delayed = app.jobs("state=delayed").await;

    assert_eq!(ids(&failed), [failed_job]);
    let job = &failed[0];
    assert_eq!(job["attempts"], 1);
    assert_eq!(job["lastError"], "publish refused: stream not found");
    assert!(
        (ms(&job["failedAt"]) - now_ms()).abs() < WAIT.as_millis() as i64,
        "failed just now: {job}"
    );
    assert!(
        job["dueAt"].is_string(),
        "the due time of its last try: {job}"
    );
    assert_eq!(ids(&active), [held]);
    let job = &active[0];
    assert!(
        (ms(&job["dueAt"]) - now_ms()).abs() < WAIT.as_millis() as i64,
        "due when it was claimed: {job}"
    );
    assert!(
        job["lastError"].is_null() && job["failedAt"].is_null(),
        "{job}"
    );
    assert_eq!(ids(&delayed), [retrying]);
    let job = &delayed[0];
    assert_eq!(job["attempts"], 1, "{job}");
    assert!(
        job["lastError"].as_str().unwrap().contains("NATS said no"),
        "the error of a job waiting for its next try: {job}"
    );
    assert!(
        ms(&job["dueAt"]) > now_ms() + 30_000,
        "its next try after the backoff: {job}"
    );
    assert!(job["failedAt"].is_string(), "{job}");
}

#[tokio::test]
async fn a_missing_or_unknown_state_and_out_of_range_paging_are_400s_naming_the_field() {
    let app = spawn_app().await;
    let operator = app.operator();
    for (query, fields) in [
        ("", &["state"][..]),
        ("state=", &["state"]),
        ("state=completed", &["state"]),
        ("state=FAILED", &["state"]),
        ("state=failed&limit=0", &["limit"]),
        ("state=failed&limit=501", &["limit"]),
        ("state=failed&limit=ten", &["limit"]),
        ("state=failed&offset=-1", &["offset"]),
        ("state=failed&offset=1000001", &["offset"]),
        ("limit=0&offset=x", &["limit", "offset", "state"]),
    ] {
        let reply = app
            .get_as(&format!("/api/queues/expiration/jobs?{query}"), &operator)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            reply.text
        );
        reply.assert_invalid(fields);
    }
    app.jobs("state=failed&limit=500&offset=1000000").await;
}
