//! The queue's HTTP API under test: the operators' routes served on a random port over a
//! queue of the test's own namespace (its Redis keys deleted afterwards), and workers the test
//! starts and stops itself, firing through [`Scripted`], which fires, fails or holds each job
//! as the test says. [`TestApp::replica`] opens the same queue again, as another process
//! would.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use ticketing_common::{
    CancellationToken, Component,
    settings::Namespace,
    testing::{
        RedisKeys, TestServer,
        api::{ApiClient, Reply, User},
        eventually, redis_url, session_keys, unique_namespace,
    },
};
use ticketing_expiration::{
    queue::{Queue, Retried},
    worker::{Fire, Worker, listen_for_wakes, now_ms},
};
use tokio::sync::Semaphore;
use uuid::Uuid;

/// How long a test waits for an effect.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestApp {
    pub api: ApiClient,
    /// The queue the server reads and acts on.
    pub queue: Queue,
    pub namespace: Namespace,
    _server: TestServer,
    _keys: RedisKeys,
}

impl std::ops::Deref for TestApp {
    type Target = ApiClient;
    fn deref(&self) -> &ApiClient {
        &self.api
    }
}

/// The queue's routes alone (no workers, no listeners): tests start the workers they need.
pub async fn spawn_app() -> TestApp {
    let namespace = unique_namespace();
    let keys = RedisKeys::of(&redis_url(), &namespace);
    let queue = open(&namespace).await;
    let component = Component {
        name: ticketing_expiration::NAME,
        router: ticketing_expiration::http::router(queue.clone()),
        tasks: Vec::new(),
        checks: Vec::new(),
        events: None,
    };
    let server = TestServer::start(vec![component], session_keys()).await;
    TestApp {
        api: ApiClient::new(server.url(""), session_keys()),
        queue,
        namespace,
        _server: server,
        _keys: keys,
    }
}

async fn open(namespace: &Namespace) -> Queue {
    Queue::connect(
        &redis_url(),
        namespace.redis_prefix(),
        Duration::from_secs(30),
    )
    .await
    .expect("the queue's Redis")
}

/// A started worker; it stops when dropped.
pub struct Running(CancellationToken);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl TestApp {
    /// The same queue opened again, as another replica's process would.
    pub async fn replica(&self) -> Queue {
        open(&self.namespace).await
    }

    /// Starts a worker (and its wake listener) on `queue`.
    pub fn start_worker<F: Fire>(&self, queue: &Queue, fire: F) -> Running {
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

    /// A job due in `ms` milliseconds (negative: already overdue).
    pub async fn schedule(&self, ms: i64) -> Uuid {
        let order = Uuid::now_v7();
        assert!(self.queue.enqueue(order, now_ms() + ms).await.unwrap());
        order
    }

    /// A job in the dead set, failed with `error`, as a worker leaves it.
    pub async fn failed_job(&self, error: &str) -> Uuid {
        let order = self.schedule(0).await;
        let queue = self.queue.clone().with_retries(1, Duration::from_millis(1));
        let claimed = queue.claim("a-failing-worker", 1).await.unwrap();
        assert_eq!(
            claimed.jobs.first().map(|job| job.order_id),
            Some(order),
            "the job was due, and first"
        );
        assert_eq!(
            queue.retry(&claimed.jobs[0], error).await.unwrap(),
            Retried::Dead
        );
        order
    }

    pub async fn get_as(&self, path: &str, user: &User) -> Reply {
        self.send(Method::GET, path, Some(user), None).await
    }

    pub async fn post_as(&self, path: &str, user: &User) -> Reply {
        self.send(Method::POST, path, Some(user), None).await
    }

    pub async fn delete_as(&self, path: &str, user: &User) -> Reply {
        self.send(Method::DELETE, path, Some(user), None).await
    }

    /// `GET /api/queues/expiration` as an operator.
    pub async fn queue_view(&self) -> Value {
        let reply = self
            .get_as("/api/queues/expiration", &self.operator())
            .await;
        reply.assert_status(StatusCode::OK);
        reply.json()
    }

    /// The counts as `[delayed, active, failed, completed]`.
    pub async fn counts(&self) -> [u64; 4] {
        let counts = &self.queue_view().await["counts"];
        ["delayed", "active", "failed", "completed"].map(|state| {
            counts[state]
                .as_u64()
                .unwrap_or_else(|| panic!("counts.{state}: {counts}"))
        })
    }

    /// Polls the counts until they are `expected`; panics with the last ones otherwise.
    pub async fn wait_for_counts(&self, expected: [u64; 4]) {
        let reached = eventually(WAIT, || async {
            (self.counts().await == expected).then_some(())
        })
        .await;
        assert!(
            reached.is_some(),
            "counts [delayed, active, failed, completed] stayed {:?}, expected {expected:?}",
            self.counts().await
        );
    }

    /// `GET /api/queues/expiration/jobs?<query>` as an operator: the jobs, by id.
    pub async fn jobs(&self, query: &str) -> Vec<Value> {
        let reply = self
            .get_as(
                &format!("/api/queues/expiration/jobs?{query}"),
                &self.operator(),
            )
            .await;
        reply.assert_status(StatusCode::OK);
        reply.json().as_array().cloned().expect("an array of jobs")
    }

    /// The latest entries of the queue's action log, as `(operator, action, target)`.
    pub async fn actions(&self) -> Vec<(Uuid, String, String)> {
        self.queue
            .action_log()
            .latest(20)
            .await
            .unwrap()
            .into_iter()
            .map(|a| (a.operator_id, a.action, a.target))
            .collect()
    }
}

/// Ids of a listing.
pub fn ids(jobs: &[Value]) -> Vec<Uuid> {
    jobs.iter()
        .map(|job| job["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// Reads an RFC 3339 field as ms since the epoch.
pub fn ms(value: &Value) -> i64 {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"));
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Fires jobs as the test says: fails the ones in `failing` (as a publish NATS refused
/// would), holds the ones in `held` until [`Scripted::release`], fires the rest; records
/// what fired and when.
#[derive(Clone)]
pub struct Scripted {
    failing: Arc<Mutex<HashSet<Uuid>>>,
    held: Arc<Mutex<HashSet<Uuid>>>,
    gate: Arc<Semaphore>,
    fired: Arc<Mutex<HashMap<Uuid, i64>>>,
}

impl Fire for Scripted {
    async fn fire(&self, order_id: Uuid) -> anyhow::Result<()> {
        if self.failing.lock().unwrap().contains(&order_id) {
            anyhow::bail!("NATS said no to {order_id}");
        }
        if self.held.lock().unwrap().contains(&order_id) {
            self.gate.acquire().await?.forget();
        }
        self.fired.lock().unwrap().insert(order_id, now_ms());
        Ok(())
    }
}

impl Default for Scripted {
    fn default() -> Self {
        Scripted {
            failing: Arc::default(),
            held: Arc::default(),
            gate: Arc::new(Semaphore::new(0)),
            fired: Arc::default(),
        }
    }
}

impl Scripted {
    pub fn failing(self, order: Uuid) -> Self {
        self.failing.lock().unwrap().insert(order);
        self
    }

    pub fn holding(self, order: Uuid) -> Self {
        self.held.lock().unwrap().insert(order);
        self
    }

    /// Lets the held jobs fire.
    pub fn release(&self) {
        self.gate.add_permits(1_000);
    }

    /// When `order` fired, if it did.
    pub fn fired_at(&self, order: Uuid) -> Option<i64> {
        self.fired.lock().unwrap().get(&order).copied()
    }

    pub fn fired_count(&self) -> usize {
        self.fired.lock().unwrap().len()
    }

    /// Waits until `order` fired; when it did.
    pub async fn wait_fired(&self, order: Uuid) -> i64 {
        eventually(WAIT, || async { self.fired_at(order) })
            .await
            .unwrap_or_else(|| panic!("job {order} did not fire"))
    }
}
