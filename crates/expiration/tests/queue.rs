//! The delayed-job queue and its worker against the real Redis and NATS: timing, duplicates,
//! crashed workers, lease tokens, retries into the dead set, a Redis restart between enqueue
//! and due time, the eviction-policy check, and the `order.created` → `expiration.complete`
//! path.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use ticketing_common::{
    CancellationToken,
    settings::LogFormat,
    telemetry,
    testing::{OwnRedis, RedisKeys, TestBus, eventually, redis_url, unique_namespace},
};
use ticketing_events::{
    Cents, Envelope, ExpirationComplete, OrderCreated, OrderStatus, OrderTicket, Subject,
};
use ticketing_expiration::{
    PublishExpiration, expiration_event_id,
    queue::{Queue, Retried},
    worker::{Fire, Worker, listen_for_wakes, now_ms},
};
use uuid::Uuid;

/// Records what fired and when.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<(Uuid, i64)>>>);

impl Fire for Recorder {
    async fn fire(&self, order_id: Uuid) -> anyhow::Result<()> {
        self.0.lock().unwrap().push((order_id, now_ms()));
        Ok(())
    }
}

impl Recorder {
    fn fired(&self) -> Vec<(Uuid, i64)> {
        self.0.lock().unwrap().clone()
    }
}

/// Always fails, counting tries.
#[derive(Clone, Default)]
struct Failing(Arc<Mutex<u32>>);

impl Fire for Failing {
    async fn fire(&self, _: Uuid) -> anyhow::Result<()> {
        *self.0.lock().unwrap() += 1;
        anyhow::bail!("NATS said no")
    }
}

/// A queue on a fresh prefix; its keys are deleted when the guard drops.
async fn queue_on(url: &str, lease: Duration) -> (Queue, RedisKeys) {
    let prefix = unique_namespace().to_string();
    let keys = RedisKeys::new(url, &format!("{prefix}:"));
    (Queue::connect(url, &prefix, lease).await.unwrap(), keys)
}

struct Running(CancellationToken);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Starts a worker (and its wake listener) on `queue`.
fn start<F: Fire>(queue: &Queue, fire: F) -> Running {
    let stop = CancellationToken::new();
    let worker = Worker::new(queue.clone(), fire);
    tokio::spawn(listen_for_wakes(
        queue.clone(),
        vec![worker.waker()],
        stop.clone(),
    ));
    tokio::spawn(worker.run(stop.clone()));
    Running(stop)
}

/// The whole component (listener, workers, wake listener) on a namespace of its own; it
/// stops and its keys go when this is dropped.
struct Service {
    _running: Running,
    _keys: RedisKeys,
}

async fn start_service(workers: usize) -> (TestBus, Service) {
    let namespace = unique_namespace();
    let bus = TestBus::create(&namespace).await;
    let keys = RedisKeys::new(&redis_url(), &format!("{namespace}:"));
    let queue = Queue::connect(&redis_url(), namespace.as_str(), Duration::from_secs(30))
        .await
        .unwrap();
    let component = ticketing_expiration::component(queue, &bus.bus, workers);
    let stop = CancellationToken::new();
    for task in component.tasks {
        tokio::spawn(task.start(stop.clone()));
    }
    let service = Service {
        _running: Running(stop),
        _keys: keys,
    };
    (bus, service)
}

/// `order.created` for an order expiring in `ms` milliseconds.
fn order_created(order: Uuid, ms: i64) -> Envelope<OrderCreated> {
    Envelope::new(OrderCreated {
        id: order,
        version: 0,
        status: OrderStatus::Created,
        user_id: Uuid::now_v7(),
        expires_at: time::OffsetDateTime::now_utc() + time::Duration::milliseconds(ms),
        ticket: OrderTicket {
            id: Uuid::now_v7(),
            price: Cents(1000),
        },
    })
}

#[tokio::test]
async fn a_job_fires_at_its_due_time_once_and_cannot_be_scheduled_again() {
    let (queue, _keys) = queue_on(&redis_url(), Duration::from_secs(30)).await;
    let recorder = Recorder::default();
    let _worker = start(&queue, recorder.clone());
    tokio::time::sleep(Duration::from_millis(100)).await; // the worker is idle and subscribed
    let order = Uuid::now_v7();
    let due = now_ms() + 300;

    assert!(queue.enqueue(order, due).await.unwrap());
    let fired = eventually(Duration::from_secs(5), || async {
        recorder.fired().first().copied()
    })
    .await;

    let (id, at) = fired.expect("the job fired");
    assert_eq!(id, order);
    assert!(at >= due, "not early: fired {}ms before due", due - at);
    assert!(
        at - due < 500,
        "woken for it, not found by a slow poll: {}ms late",
        at - due
    );
    let settled = eventually(Duration::from_secs(2), || async {
        let stats = queue.stats().await.unwrap();
        (stats.pending + stats.leased == 0).then_some(())
    })
    .await;
    assert!(settled.is_some(), "acked");
    assert!(
        !queue.enqueue(order, now_ms()).await.unwrap(),
        "a fired job is not scheduled again"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(recorder.fired().len(), 1);
}

#[tokio::test]
async fn enqueueing_one_order_twice_makes_one_job() {
    let (queue, _keys) = queue_on(&redis_url(), Duration::from_secs(30)).await;
    let order = Uuid::now_v7();

    assert!(queue.enqueue(order, now_ms() + 60_000).await.unwrap());
    assert!(!queue.enqueue(order, now_ms() + 1_000).await.unwrap());

    assert_eq!(queue.stats().await.unwrap().pending, 1);
}

#[tokio::test]
async fn a_worker_that_dies_after_claiming_loses_the_job_to_another_after_its_lease() {
    let (queue, _keys) = queue_on(&redis_url(), Duration::from_millis(500)).await;
    let order = Uuid::now_v7();
    queue.enqueue(order, now_ms()).await.unwrap();
    let claimed = queue.claim("doomed-worker", 10).await.unwrap();
    assert_eq!(claimed.jobs.len(), 1);
    let claimed_at = Instant::now();
    // The doomed worker never acks: it "died" here.

    let recorder = Recorder::default();
    let _worker = start(&queue, recorder.clone());
    let fired = eventually(Duration::from_secs(5), || async {
        recorder.fired().first().copied()
    })
    .await;

    assert_eq!(fired.map(|(id, _)| id), Some(order));
    assert!(
        claimed_at.elapsed() >= Duration::from_millis(450),
        "not before the lease ran out"
    );
    assert!(
        !queue.ack(&claimed.jobs[0]).await.unwrap(),
        "the dead worker's token no longer acks"
    );
}

#[tokio::test]
async fn only_the_worker_holding_the_current_lease_can_ack() {
    let (queue, _keys) = queue_on(&redis_url(), Duration::from_millis(200)).await;
    queue.enqueue(Uuid::now_v7(), now_ms()).await.unwrap();
    let first = queue.claim("a", 10).await.unwrap().jobs.remove(0);
    tokio::time::sleep(Duration::from_millis(250)).await; // a's lease runs out
    let second = queue.claim("b", 10).await.unwrap().jobs.remove(0);

    assert_eq!(first.order_id, second.order_id);
    assert_ne!(first.token, second.token);
    assert!(!queue.ack(&first).await.unwrap());
    assert_eq!(
        queue.retry(&first, "late").await.unwrap(),
        Retried::LostLease
    );
    assert!(queue.ack(&second).await.unwrap());
    assert!(!queue.ack(&second).await.unwrap(), "acked once");
}

#[tokio::test]
async fn failing_jobs_retry_with_backoff_and_end_in_the_dead_set() {
    let (queue, _keys) = queue_on(&redis_url(), Duration::from_secs(30)).await;
    let queue = queue.with_retries(3, Duration::from_millis(50));
    let order = Uuid::now_v7();
    queue.enqueue(order, now_ms()).await.unwrap();
    let failing = Failing::default();
    let _worker = start(&queue, failing.clone());

    let dead = eventually(Duration::from_secs(5), || async {
        (queue.stats().await.unwrap().dead == 1).then_some(())
    })
    .await;

    assert!(dead.is_some(), "the job ended in the dead set");
    assert_eq!(*failing.0.lock().unwrap(), 3, "tried max_attempts times");
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.pending, stats.leased), (0, 0));
    let dead = queue.dead_jobs().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].0, order);
    assert!(
        dead[0].1.contains("NATS said no"),
        "the reason is kept: {dead:?}"
    );
}

#[tokio::test]
async fn a_job_still_fires_when_its_redis_restarts_between_enqueue_and_due_time() {
    let mut redis = OwnRedis::start(&["--appendonly", "yes", "--appendfsync", "always"]).await;
    let (queue, _keys) = queue_on(&redis.url(), Duration::from_secs(30)).await;
    let recorder = Recorder::default();
    let _worker = start(&queue, recorder.clone());
    let order = Uuid::now_v7();
    let due = now_ms() + 1_500;
    queue.enqueue(order, due).await.unwrap();

    redis.kill().await;
    tokio::time::sleep(Duration::from_millis(300)).await; // an outage, with the worker running
    redis.restart().await;
    let fired = eventually(Duration::from_secs(10), || async {
        recorder.fired().first().copied()
    })
    .await;

    let (id, at) = fired.expect("the job survived the restart");
    assert_eq!(id, order);
    assert!(at >= due);
}

#[tokio::test]
async fn overdue_jobs_fire_within_a_couple_of_seconds_after_redis_comes_back() {
    let mut redis = OwnRedis::start(&["--appendonly", "yes", "--appendfsync", "always"]).await;
    let (queue, _keys) = queue_on(&redis.url(), Duration::from_secs(30)).await;
    let recorder = Recorder::default();
    let _worker = start(&queue, recorder.clone());
    let order = Uuid::now_v7();
    queue.enqueue(order, now_ms() + 300).await.unwrap();

    redis.kill().await;
    tokio::time::sleep(Duration::from_millis(1_500)).await; // the job becomes due during the outage
    assert!(recorder.fired().is_empty());
    redis.restart().await;
    let back = Instant::now();
    let fired = eventually(Duration::from_secs(5), || async {
        recorder.fired().first().copied()
    })
    .await;

    assert_eq!(fired.map(|(id, _)| id), Some(order));
    assert!(
        back.elapsed() < Duration::from_secs(3),
        "fired {:?} after Redis returned",
        back.elapsed()
    );
}

#[tokio::test]
async fn the_queue_refuses_a_redis_that_may_evict_its_jobs() {
    let redis = OwnRedis::start(&["--maxmemory-policy", "allkeys-lru"]).await;

    let refused = Queue::connect(&redis.url(), "evicting", Duration::from_secs(30))
        .await
        .unwrap_err();

    let message = format!("{refused:#}");
    assert!(
        message.contains("allkeys-lru") && message.contains("noeviction"),
        "{message}"
    );
    assert!(
        Queue::connect(&redis_url(), "fine", Duration::from_secs(30))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn an_order_created_event_schedules_an_expiration_complete_published_once() {
    let (bus, _service) = start_service(2).await;
    let order = Uuid::now_v7();
    let created = order_created(order, 500);
    for _ in 0..2 {
        // Delivered twice, as at-least-once delivery may.
        let payload = serde_json::to_vec(&created).unwrap();
        bus.bus
            .jetstream()
            .publish(bus.bus.subject(Subject::OrderCreated), payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    let subject = bus.bus.subject(Subject::ExpirationComplete);
    // The stream holds the two order.created copies and whatever expiration published.
    let expirations = || async {
        let mut stream = bus
            .bus
            .jetstream()
            .get_stream(bus.bus.stream_name())
            .await
            .ok()?;
        Some(stream.info().await.ok()?.state.messages.saturating_sub(2))
    };
    let published = eventually(Duration::from_secs(10), || async {
        expirations().await.filter(|n| *n > 0)
    })
    .await;
    assert!(published.is_some(), "expiration.complete published");
    tokio::time::sleep(Duration::from_millis(500)).await; // room for a wrong second one
    assert_eq!(expirations().await, Some(1), "published once");
    let stream = bus
        .bus
        .jetstream()
        .get_stream(bus.bus.stream_name())
        .await
        .unwrap();
    let message = stream
        .get_last_raw_message_by_subject(&subject)
        .await
        .unwrap();
    let event: Envelope<ExpirationComplete> = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(event.data.order_id, order);
    assert_eq!(
        event.id,
        expiration_event_id(order),
        "a deterministic event id"
    );
    let _ = PublishExpiration {
        bus: bus.bus.clone(),
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_queue_fire_every_job_exactly_once() {
    let (queue, _keys) = queue_on(&redis_url(), Duration::from_secs(30)).await;
    let recorder = Recorder::default();
    let orders: Vec<Uuid> = (0..300).map(|_| Uuid::now_v7()).collect();
    let due = now_ms() + 200;
    for order in &orders {
        queue.enqueue(*order, due).await.unwrap();
    }
    let _first = start(&queue, recorder.clone());
    let _second = start(&queue, recorder.clone());

    let all = eventually(Duration::from_secs(10), || async {
        (recorder.fired().len() >= orders.len()).then_some(())
    })
    .await;
    assert!(all.is_some(), "every job fired");
    tokio::time::sleep(Duration::from_millis(300)).await; // room for a wrong second firing

    let mut fired: Vec<Uuid> = recorder.fired().into_iter().map(|(id, _)| id).collect();
    fired.sort();
    let mut expected = orders.clone();
    expected.sort();
    assert_eq!(fired, expected, "each job fired once, none lost");
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.pending, stats.leased, stats.dead), (0, 0, 0));
}

// Current-thread runtime: the thread-local subscriber (with its OpenTelemetry layer, which
// gives spans their trace ids) sees every task of the test.
#[tokio::test]
async fn expiration_complete_continues_the_trace_and_request_id_of_the_order_created_that_scheduled_it()
 {
    let _tracing = tracing::subscriber::set_default(telemetry::subscriber(
        LogFormat::Json,
        tracing_subscriber::EnvFilter::new("info"),
        std::io::sink,
    ));
    let (bus, _service) = start_service(1).await;
    let order = Uuid::now_v7();
    let created = order_created(order, 300);
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        "traceparent",
        format!("00-{trace}-00f067aa0ba902b7-01").as_str(),
    );
    headers.insert("x-request-id", "req-expiry-trace-1");
    bus.bus
        .jetstream()
        .publish_with_headers(
            bus.bus.subject(Subject::OrderCreated),
            headers,
            serde_json::to_vec(&created).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();

    let subject = bus.bus.subject(Subject::ExpirationComplete);
    let message = eventually(Duration::from_secs(10), || async {
        let stream = bus
            .bus
            .jetstream()
            .get_stream(bus.bus.stream_name())
            .await
            .ok()?;
        stream.get_last_raw_message_by_subject(&subject).await.ok()
    })
    .await
    .expect("expiration.complete published");
    let event: Envelope<ExpirationComplete> = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(event.data.order_id, order);
    let sent = message.headers;
    let traceparent = sent
        .get("traceparent")
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default();
    assert_eq!(
        traceparent.split('-').nth(1),
        Some(trace),
        "expiration.complete belongs to the order's trace: {traceparent:?}"
    );
    assert_ne!(
        traceparent.split('-').nth(2),
        Some("00f067aa0ba902b7"),
        "as a new span in that trace"
    );
    assert_eq!(
        sent.get("x-request-id").map(|v| v.as_str()),
        Some("req-expiry-trace-1"),
        "and carries the request id of the purchase"
    );
}
