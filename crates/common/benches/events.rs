//! Events per second through the whole backbone: transactions writing to the outbox → the
//! relay → JetStream → a durable consumer's handler. Also reports end-to-end latency (commit
//! to handler) percentiles. Runs against the local PostgreSQL and NATS in a fresh namespace.
//!
//! Two phases: "live" (writers, relay and consumer all running; bound by commits) and
//! "backlog" (the events are committed first, then relay and consumer drain them; bound by
//! the relay and JetStream).
//!
//! `cargo bench -p ticketing-common --bench events [-- EVENTS WRITERS]`

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use ticketing_common::{
    CancellationToken,
    bus::{
        listener::{Applied, Listener, ListenerSettings, Subscription},
        outbox::{self, Relay},
    },
    testing::{TestBus, TestDb, unique_namespace},
};
use ticketing_events::{Envelope, ExpirationComplete};
use time::OffsetDateTime;
use uuid::Uuid;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let events = args.first().copied().unwrap_or(20_000);
    let writers = args.get(1).copied().unwrap_or(8);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(run(events, writers, false));
    runtime.block_on(run(events, writers, true));
}

async fn write(pool: &sqlx::PgPool, events: usize, writers: usize) -> usize {
    let per_writer = events / writers;
    let mut handles = Vec::new();
    for _ in 0..writers {
        let pool = pool.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..per_writer {
                let mut tx = pool.begin().await.unwrap();
                outbox::enqueue(
                    &mut tx,
                    &Envelope::new(ExpirationComplete {
                        order_id: Uuid::now_v7(),
                    }),
                )
                .await
                .unwrap();
                tx.commit().await.unwrap();
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    per_writer * writers
}

async fn run(events: usize, writers: usize, backlog_first: bool) {
    let namespace = unique_namespace();
    let db = TestDb::create(&namespace, "bench").await;
    outbox::install_schema(&db.pool).await.unwrap();
    let bus = TestBus::create(&namespace).await;
    let stop = CancellationToken::new();

    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::with_capacity(events)));
    let seen = latencies.clone();
    let listener = Listener::new(
        &bus.bus,
        "bench",
        Subscription::handler(move |envelope: Envelope<ExpirationComplete>| {
            let seen = seen.clone();
            async move {
                let age = OffsetDateTime::now_utc() - envelope.occurred_at;
                seen.lock()
                    .unwrap()
                    .push(age.try_into().unwrap_or_default());
                Ok(Applied::Now)
            }
        }),
    )
    .with_settings(ListenerSettings {
        concurrency: 256,
        ..ListenerSettings::default()
    });
    listener.ensure_consumer().await.unwrap();
    let mut total = 0;
    let mut written = Duration::ZERO;
    if backlog_first {
        let started = Instant::now();
        total = write(&db.pool, events, writers).await;
        written = started.elapsed();
    }
    let consuming = tokio::spawn(listener.run(stop.clone()));
    let relaying =
        tokio::spawn(Relay::new(db.pool.clone(), bus.bus.clone(), "bench").run(stop.clone()));

    let phase = if backlog_first { "backlog" } else { "live" };
    println!("[{phase}] {events} single-event transactions from {writers} concurrent writers");
    let started = Instant::now();
    if !backlog_first {
        total = write(&db.pool, events, writers).await;
        written = started.elapsed();
    }
    while latencies.lock().unwrap().len() < total {
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "events did not arrive"
        );
    }
    let elapsed = started.elapsed();
    stop.cancel();
    let _ = consuming.await;
    let _ = relaying.await;

    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize];
    println!(
        "[{phase}] written (committed) in {:.2?}: {:.0} tx/s",
        written,
        total as f64 / written.as_secs_f64()
    );
    println!(
        "[{phase}] outbox → relay → JetStream → consumer: {total} events in {:.2?} = {:.0} events/s",
        elapsed,
        total as f64 / elapsed.as_secs_f64()
    );
    if backlog_first {
        return; // latency from commit is meaningless when events waited on purpose
    }
    println!(
        "[{phase}] commit → handler latency: p50 {:.1?}  p99 {:.1?}  max {:.1?}",
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
}
