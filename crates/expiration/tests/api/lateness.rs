//! Lateness as operators see it: kept per minute in Redis by every replica's acks, so the
//! summary and the chart reflect late workers in any process, `null` when nothing fired.

use std::time::Duration;

use reqwest::StatusCode;
use ticketing_expiration::worker::now_ms;

use crate::helpers::{Scripted, WAIT, ms, spawn_app};

#[tokio::test]
async fn lateness_is_null_and_the_chart_empty_until_a_job_fires() {
    let app = spawn_app().await;
    app.schedule(3_600_000).await;

    let view = app.queue_view().await;
    let chart = app
        .get_as("/api/queues/expiration/lateness?minutes=3", &app.operator())
        .await;
    let default = app
        .get_as("/api/queues/expiration/lateness", &app.operator())
        .await;

    assert_eq!(
        view["lateness"],
        serde_json::json!({"p50Ms": null, "p99Ms": null, "maxMs": null})
    );
    chart.assert_status(StatusCode::OK);
    let points = chart.json().as_array().cloned().unwrap();
    assert_eq!(points.len(), 3);
    let minute = now_ms() / 60_000 * 60_000;
    for (i, point) in points.iter().enumerate() {
        assert_eq!(point["count"], 0, "{point}");
        assert!(
            point["p50Ms"].is_null() && point["p99Ms"].is_null(),
            "{point}"
        );
        let at = ms(&point["at"]);
        assert_eq!(at % 60_000, 0, "the start of a minute: {point}");
        // The clock may turn a minute between the request and now.
        let expected = minute - (2 - i as i64) * 60_000;
        assert!(at == expected || at == expected - 60_000, "{point}");
    }
    assert_eq!(
        default.json().as_array().unwrap().len(),
        60,
        "an hour by default"
    );
}

#[tokio::test]
async fn minutes_out_of_range_are_a_400_naming_minutes() {
    let app = spawn_app().await;
    for minutes in ["0", "181", "-5", "sixty", ""] {
        app.get_as(
            &format!("/api/queues/expiration/lateness?minutes={minutes}"),
            &app.operator(),
        )
        .await
        .assert_invalid(&["minutes"]);
    }
    let longest = app
        .get_as(
            "/api/queues/expiration/lateness?minutes=180",
            &app.operator(),
        )
        .await;
    assert_eq!(longest.json().as_array().unwrap().len(), 180);
}

/// Schedules `n` jobs that were due `late_ms` ago, starts a worker on a replica of its own,
/// waits for them to fire and stops it.
async fn fire_late(app: &crate::helpers::TestApp, n: usize, late_ms: i64) {
    let replica = app.replica().await;
    let before = app.queue.counts().await.unwrap().completed;
    for _ in 0..n {
        app.schedule(-late_ms).await;
    }
    let _worker = app.start_worker(&replica, Scripted::default());
    let done = ticketing_common::testing::eventually(WAIT, || async {
        (app.queue.counts().await.unwrap().completed == before + n as u64).then_some(())
    })
    .await;
    assert!(done.is_some(), "{n} jobs {late_ms} ms late fired");
}

#[tokio::test]
async fn lateness_reflects_late_workers_on_every_replica() {
    let app = spawn_app().await;

    // Two replicas, one after the other, each starting after its jobs were due: one finds
    // them 2 s late, the other 6 s late. The server fired nothing itself.
    fire_late(&app, 20, 2_000).await;
    fire_late(&app, 20, 6_000).await;
    let view = app.queue_view().await;
    let chart = app
        .get_as("/api/queues/expiration/lateness?minutes=5", &app.operator())
        .await
        .json();

    let lateness = &view["lateness"];
    let [p50, p99, max] = ["p50Ms", "p99Ms", "maxMs"].map(|field| {
        lateness[field]
            .as_i64()
            .unwrap_or_else(|| panic!("{field}: {lateness}"))
    });
    // Within the 3.2% the buckets allow, plus the time a worker takes to start and fire.
    let slack = 3_000;
    assert!(
        (1_930..2_000 + slack).contains(&p50),
        "p50 of the 2 s and 6 s jobs: {lateness}"
    );
    assert!((5_800..6_000 + slack).contains(&p99), "p99: {lateness}");
    assert!((6_000..6_000 + slack).contains(&max), "max: {lateness}");
    assert!(p99 <= max, "{lateness}");
    let points = chart.as_array().unwrap();
    assert_eq!(points.len(), 5);
    let counted: u64 = points.iter().map(|p| p["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, 40, "every firing of both replicas: {chart}");
    let last = points.iter().rev().find(|p| p["count"] != 0).unwrap();
    assert!(last["p99Ms"].as_i64().unwrap() >= 1_930, "{last}");

    // A minute's counts expire after the chart's longest span, three hours and a little.
    let minute_key = format!(
        "{}:expiration:lateness:{}",
        app.namespace.redis_prefix(),
        ms(&last["at"]) / 60_000
    );
    let client = redis::Client::open(ticketing_common::testing::redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&minute_key)
        .query_async(&mut redis)
        .await
        .unwrap();
    let three_hours = Duration::from_secs(3 * 3600).as_millis() as i64;
    assert!(
        (three_hours..three_hours + 10 * 60_000).contains(&ttl),
        "{minute_key} expires in {ttl} ms"
    );
}
