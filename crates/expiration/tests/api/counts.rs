//! Counts by state follow the jobs through a real worker: scheduled (delayed), claimed
//! (active), fired (completed) and failed (its publish refused, until the dead set).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Scripted, spawn_app};

#[tokio::test]
async fn counts_follow_jobs_as_they_are_scheduled_claimed_fired_and_fail() {
    let app = spawn_app().await;
    assert_eq!(app.counts().await, [0, 0, 0, 0]);
    let fires = app.schedule(200).await;
    let held = app.schedule(200).await;
    let fails = app.schedule(200).await;
    let later = app.schedule(3_600_000).await;
    assert_eq!(app.counts().await, [4, 0, 0, 0], "scheduled: delayed");

    // The worker runs in another "process": its own connection, and one try per job.
    let replica = app
        .replica()
        .await
        .with_retries(1, Duration::from_millis(20));
    let fire = Scripted::default().holding(held).failing(fails);
    let _worker = app.start_worker(&replica, fire.clone());

    app.wait_for_counts([1, 1, 1, 1]).await;
    assert!(fire.fired_at(fires).is_some());
    fire.release();
    app.wait_for_counts([1, 0, 1, 2]).await;
    assert!(fire.fired_at(held).is_some() && fire.fired_at(later).is_none());

    let reply = app.get_as("/api/queues", &app.operator()).await;
    reply.assert_status(StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!([{"name": "expiration", "counts": {"delayed": 1, "active": 0, "failed": 1, "completed": 2}}])
    );
    // Completed is kept in Redis, not in the process that fired: a process started now sees
    // it too.
    let fresh = app.replica().await;
    assert_eq!(fresh.counts().await.unwrap().completed, 2);
}
