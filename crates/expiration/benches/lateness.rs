//! Queue lateness: from a job's due time to `expiration.complete` acknowledged by JetStream.
//! 100,000 jobs due over 10 seconds, two workers, real Redis and NATS; then the worker's CPU
//! use while idle.
//!
//! `cargo bench -p ticketing-expiration --bench lateness [-- JOBS SPREAD_SECONDS WORKERS]`

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use ticketing_common::{
    CancellationToken,
    testing::{RedisKeys, TestBus, redis_url, unique_namespace},
};
use ticketing_expiration::{
    PublishExpiration,
    queue::Queue,
    worker::{Fire, Worker, listen_for_wakes, now_ms},
};
use uuid::Uuid;

/// Publishes like production and records lateness once JetStream acknowledged.
#[derive(Clone)]
struct Timed {
    inner: PublishExpiration,
    due: Arc<Mutex<std::collections::HashMap<Uuid, i64>>>,
    lateness: Arc<Mutex<Vec<i64>>>,
}

impl Fire for Timed {
    async fn fire(&self, order_id: Uuid) -> anyhow::Result<()> {
        self.inner.fire(order_id).await?;
        let due = self
            .due
            .lock()
            .unwrap()
            .get(&order_id)
            .copied()
            .unwrap_or_default();
        self.lateness.lock().unwrap().push(now_ms() - due);
        Ok(())
    }
}

fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    fields
        .get(11)
        .and_then(|u| u.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let jobs = args.first().copied().unwrap_or(100_000) as usize;
    let spread = Duration::from_secs(args.get(1).copied().unwrap_or(10));
    let workers = args.get(2).copied().unwrap_or(2) as usize;
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(run(jobs, spread, workers));
}

async fn run(jobs: usize, spread: Duration, workers: usize) {
    let namespace = unique_namespace();
    let bus = TestBus::create(&namespace).await;
    let _keys = RedisKeys::new(&redis_url(), &format!("{namespace}:"));
    let queue = Queue::connect(&redis_url(), namespace.as_str(), Duration::from_secs(30))
        .await
        .unwrap();
    let timed = Timed {
        inner: PublishExpiration {
            bus: bus.bus.clone(),
        },
        due: Arc::default(),
        lateness: Arc::default(),
    };

    // Due times spread evenly over the window, starting two seconds from now so the
    // enqueueing itself is not measured as lateness.
    let start = now_ms() + 2_000;
    let step = spread.as_millis() as f64 / jobs as f64;
    let ids: Vec<(Uuid, i64)> = (0..jobs)
        .map(|i| (Uuid::now_v7(), start + (i as f64 * step) as i64))
        .collect();
    timed.due.lock().unwrap().extend(ids.iter().copied());
    let enqueue_started = Instant::now();
    let mut handles = Vec::new();
    for chunk in ids.chunks(jobs.div_ceil(16)) {
        let (queue, chunk) = (queue.clone(), chunk.to_vec());
        handles.push(tokio::spawn(async move {
            for (id, due) in chunk {
                queue.enqueue(id, due).await.unwrap();
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    println!(
        "enqueued {jobs} jobs in {:.2?}; due over {spread:?} from +2 s; {workers} workers",
        enqueue_started.elapsed()
    );

    let stop = CancellationToken::new();
    let mut wakers = Vec::new();
    for _ in 0..workers {
        let worker = Worker::new(queue.clone(), timed.clone());
        wakers.push(worker.waker());
        tokio::spawn(worker.run(stop.clone()));
    }
    tokio::spawn(listen_for_wakes(queue.clone(), wakers, stop.clone()));
    let deadline = Instant::now() + spread + Duration::from_secs(60);
    while timed.lateness.lock().unwrap().len() < jobs && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first_due = Instant::now();
    let _ = first_due;
    let mut lateness = timed.lateness.lock().unwrap().clone();
    lateness.sort_unstable();
    let n = lateness.len();
    let pct = |p: f64| lateness[((n as f64 - 1.0) * p) as usize];
    println!(
        "fired {n}/{jobs}: {:.0} jobs/s over the due window; lateness p50 {} ms  p99 {} ms  max {} ms",
        n as f64 / spread.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );

    // Idle: nothing due; how much CPU do the workers burn in five seconds?
    let ticks = cpu_ticks();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let per_second = (cpu_ticks() - ticks) as f64 / 5.0;
    println!(
        "idle: {:.1}% of one core (process CPU over 5 s with {workers} workers waiting)",
        per_second
    );
    stop.cancel();
}
