//! Flash sale: 2,000 signed-in buyers race for 100 tickets over HTTP against a running
//! `ticketing up`. Reports orders/s and the latency of every answer (wins and refusals), and
//! checks the outcome: 100 sold, none oversold, no 5xx.
//!
//! Run through `scripts/bench-flash-sale.sh`, which starts `ticketing up` with a known
//! `JWT_KEY` so buyers' sessions can be signed here instead of paying 2,000 argon2 sign-ups:
//! `cargo bench -p ticketing --bench flash_sale -- http://127.0.0.1:PORT [BUYERS TICKETS IN_FLIGHT]`

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use ticketing_common::session::SessionKeys;
use uuid::Uuid;

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let base = args
        .next()
        .expect("usage: flash_sale BASE_URL [BUYERS TICKETS]");
    let buyers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let tickets: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    // How many buyers may be waiting for an answer at once; all of them by default.
    let in_flight: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(buyers);
    let key = std::env::var("JWT_KEY").expect("JWT_KEY: the key the server signs sessions with");
    let keys = Arc::new(SessionKeys::new(key.as_bytes(), false).expect("valid JWT_KEY"));
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(run(base, buyers, tickets, in_flight, keys));
}

fn cookie(keys: &SessionKeys, email: &str) -> String {
    format!("session={}", keys.issue(Uuid::now_v7(), email).unwrap())
}

async fn run(
    base: String,
    buyers: usize,
    tickets: usize,
    in_flight: usize,
    keys: Arc<SessionKeys>,
) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .unwrap();
    let seller = cookie(&keys, "seller@example.com");
    let mut ids = Vec::with_capacity(tickets);
    for i in 0..tickets {
        let response = client
            .post(format!("{base}/api/tickets"))
            .header("cookie", &seller)
            .json(&json!({"title": format!("Flash sale seat {i}"), "price": 49.99}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "seed ticket");
        ids.push(
            response.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // The orders service learns tickets from events: wait until it knows every one by
    // ordering each with a probe buyer (404 until it does), then cancel the probe order, which
    // frees the ticket at once.
    let prober = cookie(&keys, "prober@example.com");
    for id in &ids {
        let started = Instant::now();
        loop {
            let response = client
                .post(format!("{base}/api/orders"))
                .header("cookie", &prober)
                .json(&json!({"ticketId": id}))
                .send()
                .await
                .unwrap();
            match response.status().as_u16() {
                404 if started.elapsed() < Duration::from_secs(30) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                201 => {
                    let order = response.json::<Value>().await.unwrap()["id"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                    let cancelled = client
                        .delete(format!("{base}/api/orders/{order}"))
                        .header("cookie", &prober)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(cancelled.status(), 204);
                    break;
                }
                status => panic!("probe order for {id}: {status}"),
            }
        }
    }
    let cookies: Vec<String> = (0..buyers)
        .map(|i| cookie(&keys, &format!("buyer{i}@example.com")))
        .collect();
    println!(
        "{tickets} tickets listed and known to orders; {buyers} buyers, {} per ticket, at most {in_flight} waiting at once",
        buyers / tickets
    );

    let barrier = Arc::new(tokio::sync::Barrier::new(buyers));
    let gate = Arc::new(tokio::sync::Semaphore::new(in_flight));
    let started = Instant::now();
    let handles: Vec<_> = cookies
        .into_iter()
        .enumerate()
        .map(|(i, cookie)| {
            let (client, base, barrier, gate) =
                (client.clone(), base.clone(), barrier.clone(), gate.clone());
            let ticket = ids[i % tickets].clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let _turn = gate.acquire().await.unwrap();
                let sent = Instant::now();
                let status = client
                    .post(format!("{base}/api/orders"))
                    .header("cookie", cookie)
                    .json(&json!({"ticketId": ticket}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                (ticket, status, sent.elapsed())
            })
        })
        .collect();
    let mut results = Vec::with_capacity(buyers);
    for handle in handles {
        results.push(handle.await.unwrap());
    }
    let elapsed = started.elapsed();

    let mut latencies: Vec<Duration> = results.iter().map(|(_, _, d)| *d).collect();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize];
    let mut by_status: HashMap<u16, usize> = HashMap::new();
    let mut wins: HashMap<&str, usize> = HashMap::new();
    for (ticket, status, _) in &results {
        *by_status.entry(*status).or_default() += 1;
        if *status == 201 {
            *wins.entry(ticket.as_str()).or_default() += 1;
        }
    }
    let sold = wins.len();
    let oversold = wins.values().filter(|n| **n > 1).count();
    let errors: usize = by_status
        .iter()
        .filter(|(s, _)| **s >= 500 || **s == 0)
        .map(|(_, n)| n)
        .sum();
    println!(
        "{buyers} orders answered in {elapsed:.2?}: {:.0} orders/s; latency p50 {:.1?}  p99 {:.1?}  max {:.1?}",
        buyers as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    let mut statuses: Vec<_> = by_status.into_iter().collect();
    statuses.sort();
    println!("answers by status: {statuses:?}");
    println!("sold {sold} of {tickets}, oversold {oversold}, 5xx or failed {errors}");
    assert!(
        sold == tickets && oversold == 0 && errors == 0,
        "the sale went wrong"
    );
}
