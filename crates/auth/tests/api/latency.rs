//! Sign-up latency, printed beside `/healthz` from the same run (`--nocapture` shows it).
//! Benchmarks measure and tests assert behaviour, so this asserts only that each sign-up
//! worked.

use std::time::Instant;

use reqwest::StatusCode;

use crate::helpers::{median, ms, spawn_app};

const SAMPLES: usize = 9;

#[tokio::test]
async fn sequential_sign_ups_are_timed_beside_healthz() {
    let app = spawn_app().await;
    app.get(&app.client, "/healthz")
        .await
        .assert_status(StatusCode::OK);

    let mut sign_ups = Vec::new();
    let mut health = Vec::new();
    for i in 0..SAMPLES {
        let started = Instant::now();
        let reply = app
            .post_signup(&app.client, &format!("timed{i}@example.com"), "s3cret")
            .await;
        sign_ups.push(started.elapsed());
        reply.assert_status(StatusCode::CREATED);

        let started = Instant::now();
        let reply = app.get(&app.client, "/healthz").await;
        health.push(started.elapsed());
        reply.assert_status(StatusCode::OK);
    }

    assert_eq!(app.user_count().await, SAMPLES as i64);
    println!(
        "sign-up latency over {SAMPLES} sequential requests: median {:.1} ms (min {:.1}, max {:.1}); /healthz median {:.2} ms",
        ms(median(sign_ups.clone())),
        ms(*sign_ups.iter().min().unwrap()),
        ms(*sign_ups.iter().max().unwrap()),
        ms(median(health)),
    );
}
