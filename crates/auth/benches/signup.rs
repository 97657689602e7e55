//! Sign-up latency over HTTP against a real server and PostgreSQL (argon2id hashing included):
//! sequential requests for latency, then concurrent ones for throughput on this machine.
//!
//! `cargo bench -p ticketing-auth --bench signup [-- SEQUENTIAL CONCURRENT_TOTAL CONCURRENCY]`

use std::time::{Duration, Instant};

use ticketing_common::testing::{TestDb, TestServer, session_keys, unique_namespace};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sequential = args.first().copied().unwrap_or(100);
    let total = args.get(1).copied().unwrap_or(400);
    let concurrency = args.get(2).copied().unwrap_or(16);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(run(sequential, total, concurrency));
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p) as usize];
    format!(
        "p50 {:.1?}  p99 {:.1?}  max {:.1?}",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    )
}

async fn signup(client: &reqwest::Client, url: &str, email: String) -> Duration {
    let started = Instant::now();
    let response = client
        .post(url)
        .json(&serde_json::json!({"email": email, "password": "s3cret-pass"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    started.elapsed()
}

async fn run(sequential: usize, total: usize, concurrency: usize) {
    let namespace = unique_namespace();
    let db = TestDb::create(&namespace, "auth").await;
    ticketing_auth::MIGRATOR.run(&db.pool).await.unwrap();
    let keys = session_keys();
    let component = ticketing_auth::component(
        db.pool.clone(),
        keys.clone(),
        ticketing_auth::Limits::none(),
    );
    let server = TestServer::start(vec![component], keys).await;
    let url = server.url("/api/users/signup");
    let client = reqwest::Client::new();

    let mut samples = Vec::new();
    for i in 0..sequential {
        samples.push(signup(&client, &url, format!("seq{i}@example.com")).await);
    }
    println!(
        "sign-up, sequential ({sequential}): {}",
        percentiles(samples)
    );

    let started = Instant::now();
    let mut handles = Vec::new();
    for worker in 0..concurrency {
        let (client, url) = (client.clone(), url.clone());
        handles.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            for i in (worker..total).step_by(concurrency) {
                samples.push(signup(&client, &url, format!("con{i}@example.com")).await);
            }
            samples
        }));
    }
    let mut samples = Vec::new();
    for handle in handles {
        samples.extend(handle.await.unwrap());
    }
    let elapsed = started.elapsed();
    println!(
        "sign-up, {concurrency} concurrent ({total}): {:.0}/s  {}",
        total as f64 / elapsed.as_secs_f64(),
        percentiles(samples)
    );
}
