//! One service under test, set up the same way for every service.
//!
//! [`Setup`] makes what a service runs on: a fresh namespace, the service's database
//! (migrated, with the outbox schema if it has events), the app's own pool on it, and a bus
//! on the test's own stream. The service builds its component from that [`Backing`] and
//! [`serve`](Backing::serve)s it; the [`Harness`] that comes back owns all of it, derefs to
//! [`ApiClient`], and offers the waits every service's tests share: for its listeners, its
//! outbox, its events and its rows. Each service's `tests/api/helpers.rs` wraps a `Harness`
//! in its own `TestApp` and adds only what is its own: typed routes, rows and envelopes.

use std::{fmt::Debug, sync::Arc, time::Duration};

use serde_json::{Value, json};
use sqlx::{PgPool, migrate::Migrator};
use ticketing_events::{Envelope, Event, Subject};
use uuid::Uuid;

use super::{
    TestBus, TestDb, TestServer,
    api::{self, ApiClient},
    eventually, unique_namespace,
};
use crate::{bus::Bus, component::Component, db, session::SessionKeys, settings::Namespace};

/// Connections in an app's pool unless its setup says otherwise: far fewer than the racers
/// of the race tests, so requests also queue for connections there.
pub const POOL_SIZE: u32 = 8;

/// The longest a test waits for an effect (an event handled, a row changed) before failing.
pub const WAIT: Duration = Duration::from_secs(15);

/// How to set up a service's backing; [`Setup::create`] makes it.
pub struct Setup {
    service: &'static str,
    migrator: &'static Migrator,
    events: bool,
    pool_size: u32,
    acquire_timeout: Duration,
}

impl Setup {
    /// A service named `service` (its database, its consumers) with `migrator`'s schema, an
    /// outbox and a stream, over a pool of [`POOL_SIZE`] connections.
    pub fn new(service: &'static str, migrator: &'static Migrator) -> Setup {
        Setup {
            service,
            migrator,
            events: true,
            pool_size: POOL_SIZE,
            acquire_timeout: Duration::from_secs(10),
        }
    }

    /// No outbox and no stream: a service that neither publishes nor listens (it then needs
    /// no NATS).
    pub fn without_events(self) -> Setup {
        Setup {
            events: false,
            ..self
        }
    }

    /// The app's pool: `size` connections, whose requests give up after `acquire_timeout`.
    pub fn pool(self, size: u32, acquire_timeout: Duration) -> Setup {
        Setup {
            pool_size: size,
            acquire_timeout,
            ..self
        }
    }

    /// Makes the namespace, the migrated database, the app's pool and the stream.
    pub async fn create(self) -> Backing {
        let namespace = unique_namespace();
        let db = TestDb::create(&namespace, self.service).await;
        // The app's own pool (see `TestDb::app_pool`); `TestDb`'s pool stays idle.
        let pool = db.app_pool_with(self.pool_size, self.acquire_timeout).await;
        db::migrate_service(&pool, self.migrator, self.service, self.events)
            .await
            .expect("migrate the test database");
        let bus = match self.events {
            true => Some(TestBus::create(&namespace).await),
            false => None,
        };
        Backing {
            namespace,
            pool,
            bus,
            db,
        }
    }
}

/// What a service under test runs on, before it runs.
pub struct Backing {
    /// The test's own namespace (databases, stream, subjects, Redis keys).
    pub namespace: Namespace,
    /// The app's pool on the migrated database.
    pub pool: PgPool,
    /// The stream, deleted with it; `None` without events (nor outbox).
    bus: Option<TestBus>,
    db: TestDb,
}

impl Backing {
    /// A bus on the test's own stream; panics for a setup [without
    /// events](Setup::without_events).
    pub fn bus(&self) -> &Bus {
        &self.bus.as_ref().expect("a setup with events").bus
    }

    /// The test database (its address, for a pool of another shape).
    pub fn db(&self) -> &TestDb {
        &self.db
    }

    /// Serves `components` with `keys` on a random port, and a client for it.
    pub async fn serve(self, components: Vec<Component>, keys: Arc<SessionKeys>) -> Harness {
        let listeners = components
            .iter()
            .flat_map(|component| {
                let subscriptions = component.events.iter().flat_map(|e| &e.subscriptions);
                subscriptions.map(|s| (component.name, s.subject()))
            })
            .collect();
        let server = TestServer::start(components, keys.clone()).await;
        Harness {
            api: ApiClient::new(server.url(""), keys),
            _server: server,
            pool: self.pool,
            listeners,
            bus: self.bus,
            _db: self.db,
        }
    }
}

/// A running service and what a test needs to poke at it; derefs to its [`ApiClient`].
/// Fields drop in order: the server stops first, then the stream and the database go.
pub struct Harness {
    /// Stops the server when the app drops.
    _server: TestServer,
    /// The app's pool (the backing's), also used by tests to look at rows.
    pub pool: PgPool,
    /// Address, HTTP client and the session keys the server was given.
    pub api: ApiClient,
    /// Who listens to what: (component name, subject) of every subscription.
    listeners: Vec<(&'static str, Subject)>,
    /// The stream, deleted with it; `None` without events (nor outbox).
    bus: Option<TestBus>,
    /// Drops the database with the app.
    _db: TestDb,
}

impl std::ops::Deref for Harness {
    type Target = ApiClient;

    fn deref(&self) -> &ApiClient {
        &self.api
    }
}

impl Harness {
    /// The same app, talked to through `client` (one keeping cookies, say, or with a longer
    /// timeout; see [`api::client_builder`]).
    pub fn with_client(mut self, client: reqwest::Client) -> Harness {
        self.api.client = client;
        self
    }

    /// A bus on the test's own stream; panics for a setup [without
    /// events](Setup::without_events).
    pub fn bus(&self) -> &Bus {
        &self.bus.as_ref().expect("a setup with events").bus
    }

    /// Events of one subject written to the outbox (sent or not).
    pub async fn outbox_count(&self, subject: Subject) -> i64 {
        api::outbox_count(&self.pool, subject).await
    }

    /// Publishes an event on the test's stream, as another service would; see
    /// [`api::publish`] for why a duplicate really arrives twice.
    pub async fn publish<T: Event>(&self, envelope: &Envelope<T>) {
        api::publish(self.bus(), envelope).await;
    }

    /// Every event of type `T` in the stream, oldest first.
    pub async fn published<T: Event>(&self) -> Vec<Envelope<T>> {
        api::published(self.bus()).await
    }

    /// Waits until `expected` events of type `T` satisfying `filter` are in the stream, and
    /// returns them; panics if fewer arrive in time.
    pub async fn wait_for_events<T: Event>(
        &self,
        expected: usize,
        filter: impl Fn(&Envelope<T>) -> bool,
    ) -> Vec<Envelope<T>> {
        let filter = &filter;
        eventually(WAIT, || async move {
            let events: Vec<Envelope<T>> = self
                .published::<T>()
                .await
                .into_iter()
                .filter(filter)
                .collect();
            (events.len() >= expected).then_some(events)
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "fewer than {expected} {} events arrived",
                T::SUBJECT.as_str()
            )
        })
    }

    /// The `data` (as JSON) of every event of type `T` whose `data.<field>` is `id`, oldest
    /// first.
    pub async fn events_about<T: Event>(&self, field: &str, id: Uuid) -> Vec<Value> {
        let data = self.published::<T>().await.into_iter().map(data_of);
        data.filter(|data| data[field] == json!(id)).collect()
    }

    /// Waits until `expected` events of type `T` whose `data.<field>` is `id` are in the
    /// stream, and returns their `data`; panics if fewer arrive in time.
    pub async fn wait_for_events_about<T: Event>(
        &self,
        field: &str,
        id: Uuid,
        expected: usize,
    ) -> Vec<Value> {
        let about = |event: &Envelope<T>| {
            serde_json::to_value(&event.data).expect("data")[field] == json!(id)
        };
        let events = self.wait_for_events(expected, about).await;
        events.into_iter().map(data_of).collect()
    }

    /// The listeners of `subject`, asserting there is one.
    fn listeners_of(&self, subject: Subject) -> impl Iterator<Item = &'static str> + '_ {
        let mut names = self
            .listeners
            .iter()
            .filter(move |(_, s)| *s == subject)
            .map(|(name, _)| *name)
            .peekable();
        assert!(names.peek().is_some(), "nothing here listens to {subject}");
        names
    }

    /// Whether the app's consumers of `subject` have handled (acked or given up on) every
    /// message published on it so far.
    pub async fn consumer_drained(&self, subject: Subject) -> bool {
        for service in self.listeners_of(subject) {
            if !api::consumer_drained(self.bus(), service, subject).await {
                return false;
            }
        }
        true
    }

    /// Waits until the app's listeners of `subject` have handled every message published on
    /// it.
    pub async fn wait_until_handled(&self, subject: Subject) {
        for service in self.listeners_of(subject) {
            api::wait_until_handled(self.bus(), service, subject, WAIT).await;
        }
    }

    /// Waits until a listener has seen a message of `subject` more than once: an early event
    /// waiting for its predecessor.
    pub async fn wait_until_redelivered(&self, subject: Subject) {
        let services: Vec<&str> = self.listeners_of(subject).collect();
        let services = &services;
        let retried = eventually(WAIT, || async move {
            for service in services {
                let mut consumer = self.bus().consumer(service, subject).await.ok()?;
                let info = consumer.info().await.ok()?;
                if info.num_redelivered >= 1 {
                    return Some(());
                }
            }
            None
        })
        .await;
        assert!(retried.is_some(), "no {subject} event was ever retried");
    }

    /// How many events the service parked (could never apply).
    pub async fn parked_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM parked_events")
            .fetch_one(&self.pool)
            .await
            .expect("count parked events")
    }

    /// Waits until every listener is idle and every outbox row has been published: nothing
    /// the test caused is still under way.
    pub async fn settle(&self) {
        for (service, subject) in &self.listeners {
            api::wait_until_handled(self.bus(), service, *subject, WAIT).await;
        }
        if self.bus.is_some() {
            api::wait_until_outbox_empty(&self.pool, WAIT).await;
        }
    }
}

/// An event's `data` as JSON.
fn data_of<T: Event>(event: Envelope<T>) -> Value {
    serde_json::to_value(event.data).expect("event data")
}

/// Reads with `read` until what it finds satisfies `done`, for at most [`WAIT`], and returns
/// that; panics with `what` and the last reading otherwise.
pub async fn wait_for<T, R, Fut>(what: &str, read: R, done: impl Fn(&T) -> bool) -> T
where
    T: Debug,
    R: Fn() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let (read, done) = (&read, &done);
    let found = eventually(
        WAIT,
        || async move { read().await.filter(|found| done(found)) },
    )
    .await;
    match found {
        Some(found) => found,
        None => panic!("{what}: now {:?}", read().await),
    }
}
