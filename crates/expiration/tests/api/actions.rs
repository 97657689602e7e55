//! Retry, promote and discard: each does exactly that, to a job in the right state only
//! (409 otherwise, 404 for an unknown or malformed id), atomically, waking the workers when
//! a job becomes due now, and each is recorded with the operator who did it.

use std::{sync::Arc, time::Instant};

use reqwest::{Method, StatusCode};
use ticketing_expiration::worker::now_ms;
use tokio::sync::Barrier;
use uuid::Uuid;

use crate::helpers::{Scripted, ids, ms, spawn_app};

fn retry(id: impl std::fmt::Display) -> String {
    format!("/api/queues/expiration/jobs/{id}/retry")
}

fn promote(id: impl std::fmt::Display) -> String {
    format!("/api/queues/expiration/jobs/{id}/promote")
}

fn discard(id: impl std::fmt::Display) -> String {
    format!("/api/queues/expiration/jobs/{id}")
}

#[tokio::test]
async fn a_retried_job_is_due_now_with_fresh_attempts_and_its_last_error_and_then_fires() {
    let app = spawn_app().await;
    let order = app.failed_job("NATS said no").await;
    let untouched = app.failed_job("NATS said no").await;
    let operator = app.operator();

    let reply = app.post_as(&retry(order), &operator).await;

    reply.assert_status(StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["id"], order.to_string());
    assert_eq!(body["orderId"], order.to_string());
    assert!(
        (ms(&body["dueAt"]) - now_ms()).abs() < 5_000,
        "due now: {body}"
    );
    assert_eq!(app.counts().await, [1, 0, 1, 0]);
    assert_eq!(ids(&app.jobs("state=failed").await), [untouched]);
    let delayed = app.jobs("state=delayed").await;
    assert_eq!(ids(&delayed), [order]);
    assert_eq!(delayed[0]["attempts"], 0, "a fresh set of attempts");
    assert_eq!(
        delayed[0]["lastError"], "NATS said no",
        "why it failed before"
    );
    assert_eq!(
        app.actions().await,
        [(operator.id, "retry".to_owned(), order.to_string())]
    );
    let fire = Scripted::default();
    let _worker = app.start_worker(&app.queue, fire.clone());
    fire.wait_fired(order).await;
    app.wait_for_counts([0, 0, 1, 1]).await;
    assert_eq!(fire.fired_count(), 1, "only the retried job fired");
}

#[tokio::test]
async fn a_promoted_job_fires_now_and_wakes_an_idle_worker() {
    let app = spawn_app().await;
    let fire = Scripted::default();
    let _worker = app.start_worker(&app.queue, fire.clone());
    let order = app.schedule(3_600_000).await;
    let other = app.schedule(3_600_000).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await; // idle and subscribed
    let operator = app.operator();

    let reply = app.post_as(&promote(order), &operator).await;
    let answered = Instant::now();

    reply.assert_status(StatusCode::OK);
    assert!((ms(&reply.json()["dueAt"]) - now_ms()).abs() < 5_000);
    fire.wait_fired(order).await;
    let waited = answered.elapsed();
    assert!(
        waited.as_millis() < 500,
        "woken for it, not found by the once-a-second look: fired {waited:?} after the answer"
    );
    app.wait_for_counts([1, 0, 0, 1]).await;
    assert_eq!(fire.fired_at(other), None, "only the promoted job fired");
    assert_eq!(
        app.actions().await,
        [(operator.id, "promote".to_owned(), order.to_string())]
    );
}

#[tokio::test]
async fn a_discarded_job_is_gone_for_good_even_if_its_order_created_comes_again() {
    let app = spawn_app().await;
    let order = app.failed_job("NATS said no").await;
    let operator = app.operator();

    let reply = app.delete_as(&discard(order), &operator).await;

    reply.assert_status(StatusCode::NO_CONTENT);
    assert!(reply.text.is_empty());
    assert_eq!(app.counts().await, [0, 0, 0, 0]);
    for state in ["delayed", "active", "failed"] {
        assert!(app.jobs(&format!("state={state}")).await.is_empty());
    }
    assert!(
        !app.queue.enqueue(order, now_ms()).await.unwrap(),
        "a redelivered order.created does not schedule it again"
    );
    assert_eq!(
        app.actions().await,
        [(operator.id, "discard".to_owned(), order.to_string())]
    );
    let leftovers: Vec<String> = ticketing_common::testing::redis_keys(
        &ticketing_common::testing::redis_url(),
        &format!("{}:expiration:*", app.namespace.redis_prefix()),
    )
    .await;
    let mut leftovers: Vec<&str> = leftovers
        .iter()
        .map(|key| key.rsplit(':').next().unwrap())
        .collect();
    leftovers.sort();
    let mut expected = ["actions".to_owned(), order.to_string()];
    expected.sort();
    assert_eq!(
        leftovers, expected,
        "nothing of the job but its tombstone (done:<id>) and the action log"
    );
}

#[tokio::test]
async fn an_action_on_a_job_in_another_state_is_409_and_on_an_unknown_job_404() {
    let app = spawn_app().await;
    let failed = app.failed_job("NATS said no").await;
    let delayed = app.schedule(3_600_000).await;
    let active = app.schedule(0).await;
    let fire = Scripted::default().holding(active);
    let _worker = app.start_worker(&app.queue, fire.clone());
    let fired = app.schedule(0).await;
    fire.wait_fired(fired).await;
    app.wait_for_counts([1, 1, 1, 1]).await;
    let gone = app.failed_job("NATS said no").await;
    let operator = app.operator();
    app.delete_as(&discard(gone), &operator)
        .await
        .assert_status(StatusCode::NO_CONTENT);
    let before = app.counts().await;
    let recorded = app.actions().await.len();

    let conflicts = [
        (Method::POST, retry(delayed), "is delayed"),
        (Method::POST, retry(active), "is active"),
        (Method::POST, retry(fired), "already fired"),
        (Method::POST, retry(gone), "was discarded"),
        (Method::POST, promote(failed), "has failed"),
        (Method::POST, promote(active), "is active"),
        (Method::POST, promote(fired), "already fired"),
        (Method::DELETE, discard(delayed), "is delayed"),
        (Method::DELETE, discard(active), "is active"),
        (Method::DELETE, discard(fired), "already fired"),
        (Method::DELETE, discard(gone), "was discarded"),
    ];
    for (method, path, says) in conflicts {
        let reply = app.send(method.clone(), &path, Some(&operator), None).await;
        assert_eq!(
            reply.status,
            StatusCode::CONFLICT,
            "{method} {path}: {}",
            reply.text
        );
        let message = &reply.error().errors[0].message;
        assert!(message.contains(says), "{method} {path}: {message}");
    }
    let unknown = Uuid::now_v7();
    for id in [unknown.to_string(), "not-a-job".into(), "%FF".into()] {
        for (method, path) in [
            (Method::POST, retry(&id)),
            (Method::POST, promote(&id)),
            (Method::DELETE, discard(&id)),
        ] {
            let reply = app.send(method.clone(), &path, Some(&operator), None).await;
            assert_eq!(
                reply.status,
                StatusCode::NOT_FOUND,
                "{method} {path}: {}",
                reply.text
            );
            assert_eq!(reply.error().errors[0].message, "Job not found");
        }
    }

    assert_eq!(app.counts().await, before, "nothing moved");
    assert_eq!(
        app.actions().await.len(),
        recorded,
        "refusals are not recorded"
    );
    fire.release();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_simultaneous_retries_and_discards_of_one_failed_job_exactly_one_wins() {
    let app = spawn_app().await;
    let operator = app.operator();
    for round in 0..20 {
        let order = app.failed_job("NATS said no").await;
        let racers = 8;
        let barrier = Arc::new(Barrier::new(racers));
        let replies = futures::future::join_all((0..racers).map(|i| {
            let (api, barrier, operator) = (app.api.clone(), barrier.clone(), operator.clone());
            async move {
                let (method, path) = if i % 2 == 0 {
                    (Method::POST, retry(order))
                } else {
                    (Method::DELETE, discard(order))
                };
                barrier.wait().await;
                (
                    method.clone(),
                    api.send(method, &path, Some(&operator), None).await,
                )
            }
        }))
        .await;

        let winners: Vec<&Method> = replies
            .iter()
            .filter(|(_, reply)| reply.status.is_success())
            .map(|(method, _)| method)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {replies:?}");
        assert!(
            replies
                .iter()
                .all(|(_, reply)| reply.status.is_success() || reply.status == StatusCode::CONFLICT),
            "round {round}: {replies:?}"
        );
        let delayed = ids(&app.jobs("state=delayed").await);
        if *winners[0] == Method::POST {
            assert_eq!(delayed, [order], "round {round}: retried");
            // Fired, out of the way of the next round's claim.
            let claimed = app.queue.claim("drain", 10).await.unwrap();
            assert_eq!(claimed.jobs.len(), 1, "round {round}");
            assert!(app.queue.ack(&claimed.jobs[0]).await.unwrap());
        } else {
            assert!(delayed.is_empty(), "round {round}: discarded");
        }
        assert!(app.jobs("state=failed").await.is_empty(), "round {round}");
    }
}
