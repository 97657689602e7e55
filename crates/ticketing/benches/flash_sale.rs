//! Flash sale: 2,000 signed-in buyers race for 100 tickets over HTTP against a running
//! `ticketing up`. Reports orders/s and the latency of every answer (wins and refusals), and
//! checks the outcome: 100 sold, none oversold, no 5xx.
//!
//! Then, in the same run, the event mode: an event of 5,000 seats with `maxPerBuyer` 2, and
//! 1,500 buyers each trying three times at one instant (`POST /api/orders {eventId}`): every
//! seat sold at most once, exactly 3,000 sold, each buyer's third try refused, no 5xx. And
//! how long creating a 100,000-seat event takes. (`EVENT_SEATS`, `EVENT_BUYERS`,
//! `EVENT_TRIES`, `EVENT_MAX_PER_BUYER`, `BIG_EVENT_SEATS` change those numbers.)
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
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let single = runtime.block_on(run(base.clone(), buyers, tickets, in_flight, keys.clone()));
    let event = runtime.block_on(event_mode(base.clone(), keys.clone()));
    let big = runtime.block_on(big_event(base, keys));
    println!();
    println!("| mode | requests | orders/s | p50 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    for (name, stats) in [("single tickets", single), ("event seats", event)] {
        println!(
            "| {name} | {} | {:.0} | {:.1?} | {:.1?} | {:.1?} |",
            stats.requests, stats.per_second, stats.p50, stats.p99, stats.max
        );
    }
    println!(
        "creating a {}-seat event: {big:.2?}",
        env_number("BIG_EVENT_SEATS", 100_000)
    );
}

/// Throughput and latency of one mode.
struct Stats {
    requests: usize,
    per_second: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Stats {
    fn of(mut latencies: Vec<Duration>, elapsed: Duration) -> Stats {
        latencies.sort();
        let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize];
        Stats {
            requests: latencies.len(),
            per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
            p50: pct(0.5),
            p99: pct(0.99),
            max: pct(1.0),
        }
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An event starting in a week, as `organiser`; its id once orders knows it.
async fn create_event(
    client: &reqwest::Client,
    base: &str,
    organiser: &str,
    seats: usize,
    max_per_buyer: usize,
) -> (String, Duration) {
    let starts_at = time::OffsetDateTime::now_utc() + time::Duration::days(7);
    let starts_at = starts_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let sent = Instant::now();
    let response = client
        .post(format!("{base}/api/events"))
        .header("cookie", organiser)
        .json(
            &json!({"title": "Flash sale show", "venue": "Arena", "startsAt": starts_at,
                      "price": 49.99, "seats": seats, "maxPerBuyer": max_per_buyer}),
        )
        .send()
        .await
        .unwrap();
    let took = sent.elapsed();
    assert_eq!(response.status(), 201, "create the event");
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, took)
}

/// Waits until orders knows a ticket (a probe order for it is no longer 404: orders learns
/// tickets and events from events), then cancels the probe order, which frees it at once.
async fn probe_order(client: &reqwest::Client, base: &str, prober: &str, ticket: &str) {
    let started = Instant::now();
    loop {
        let response = client
            .post(format!("{base}/api/orders"))
            .header("cookie", prober)
            .json(&json!({"ticketId": ticket}))
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            404 if started.elapsed() < Duration::from_secs(60) => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            201 => {
                let order = response.json::<Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let cancelled = client
                    .delete(format!("{base}/api/orders/{order}"))
                    .header("cookie", prober)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(cancelled.status(), 204);
                return;
            }
            status => panic!("probe order for {ticket}: {status}"),
        }
    }
}

/// The event mode: buyers each try several times at one instant for the best seat.
async fn event_mode(base: String, keys: Arc<SessionKeys>) -> Stats {
    let seats = env_number("EVENT_SEATS", 5_000);
    let buyers = env_number("EVENT_BUYERS", 1_500);
    let tries = env_number("EVENT_TRIES", 3);
    let max_per_buyer = env_number("EVENT_MAX_PER_BUYER", 2);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()
        .unwrap();
    let organiser = cookie(&keys, "organiser@example.com");
    let (event, _) = create_event(&client, &base, &organiser, seats, max_per_buyer).await;
    // Orders knows the event once it knows its last seat.
    let last = ticketing_events::seat_id(Uuid::parse_str(&event).unwrap(), &seats.to_string());
    let prober = cookie(&keys, "prober@example.com");
    probe_order(&client, &base, &prober, &last.to_string()).await;
    println!();
    println!(
        "event of {seats} seats (at most {max_per_buyer} per buyer) known to orders; {buyers} buyers trying {tries} times each at one instant"
    );
    let cookies: Vec<String> = (0..buyers)
        .map(|i| cookie(&keys, &format!("fan{i}@example.com")))
        .collect();
    let barrier = Arc::new(tokio::sync::Barrier::new(buyers * tries));
    let started = Instant::now();
    let mut handles = Vec::with_capacity(buyers * tries);
    for (buyer, cookie) in cookies.iter().enumerate() {
        for _ in 0..tries {
            let (client, base, barrier, cookie, event) = (
                client.clone(),
                base.clone(),
                barrier.clone(),
                cookie.clone(),
                event.clone(),
            );
            handles.push(tokio::spawn(async move {
                barrier.wait().await;
                let sent = Instant::now();
                let response = client
                    .post(format!("{base}/api/orders"))
                    .header("cookie", cookie)
                    .json(&json!({"eventId": event}))
                    .send()
                    .await;
                let took = sent.elapsed();
                let (status, seat) = match response {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let body = r.json::<Value>().await.unwrap_or_default();
                        (status, body["ticket"]["id"].as_str().map(str::to_owned))
                    }
                    Err(_) => (0, None),
                };
                (buyer, status, seat, took)
            }));
        }
    }
    let mut results = Vec::with_capacity(handles.len());
    for handle in handles {
        results.push(handle.await.unwrap());
    }
    let elapsed = started.elapsed();

    let mut by_status: HashMap<u16, usize> = HashMap::new();
    let mut seats_sold: HashMap<String, usize> = HashMap::new();
    let mut per_buyer: HashMap<usize, usize> = HashMap::new();
    for (buyer, status, seat, _) in &results {
        *by_status.entry(*status).or_default() += 1;
        if *status == 201 {
            *seats_sold
                .entry(seat.clone().unwrap_or_default())
                .or_default() += 1;
            *per_buyer.entry(*buyer).or_default() += 1;
        }
    }
    let sold: usize = seats_sold.values().sum();
    let twice = seats_sold.values().filter(|n| **n > 1).count();
    let over_limit = per_buyer.values().filter(|n| **n > max_per_buyer).count();
    let errors: usize = by_status
        .iter()
        .filter(|(s, _)| **s >= 500 || **s == 0)
        .map(|(_, n)| n)
        .sum();
    let stats = Stats::of(results.iter().map(|r| r.3).collect(), elapsed);
    println!(
        "{} orders answered in {elapsed:.2?}: {:.0} orders/s; latency p50 {:.1?}  p99 {:.1?}  max {:.1?}",
        stats.requests, stats.per_second, stats.p50, stats.p99, stats.max
    );
    let mut statuses: Vec<_> = by_status.into_iter().collect();
    statuses.sort();
    println!("answers by status: {statuses:?}");
    let expected = (buyers * max_per_buyer.min(tries)).min(seats);
    println!(
        "sold {sold} seats (expected {expected}), sold twice {twice}, buyers over the limit {over_limit}, 5xx or failed {errors}"
    );
    assert!(
        sold == expected && twice == 0 && over_limit == 0 && errors == 0,
        "the event sale went wrong"
    );
    stats
}

/// How long `POST /api/events` takes for a 100,000-seat event.
async fn big_event(base: String, keys: Arc<SessionKeys>) -> Duration {
    let seats = env_number("BIG_EVENT_SEATS", 100_000);
    let client = reqwest::Client::new();
    let organiser = cookie(&keys, "big-organiser@example.com");
    let (_, took) = create_event(&client, &base, &organiser, seats, 4).await;
    println!();
    println!("created a {seats}-seat event in {took:.2?} (answered 201)");
    took
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
) -> Stats {
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
    let prober = cookie(&keys, "prober@example.com");
    for id in &ids {
        probe_order(&client, &base, &prober, id).await;
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

    let stats = Stats::of(results.iter().map(|(_, _, d)| *d).collect(), elapsed);
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
        stats.per_second, stats.p50, stats.p99, stats.max
    );
    let mut statuses: Vec<_> = by_status.into_iter().collect();
    statuses.sort();
    println!("answers by status: {statuses:?}");
    println!("sold {sold} of {tickets}, oversold {oversold}, 5xx or failed {errors}");
    assert!(
        sold == tickets && oversold == 0 && errors == 0,
        "the sale went wrong"
    );
    stats
}
