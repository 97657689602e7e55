//! The tickets service on a random port, over a database, a stream and Redis keys of its own,
//! and typed ways to talk to it and to look behind it.
//!
//! Every [`TestApp`] has its own namespace, hence its own database (dropped with it), its own
//! JetStream stream and subjects (deleted with it) and its own Redis key prefix (cleared with
//! it); tests never share state. The server runs the component's tasks too: outbox relay,
//! order listeners and cache upkeep. Tests play the orders service by publishing order events
//! straight to the stream, and read back what tickets published from the same stream.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;
pub use ticketing_common::testing::api::{ApiClient, Reply, User};
use ticketing_common::{
    bus::Bus,
    cache::CacheSettings,
    testing::{self, RedisKeys, TestBus, TestDb, TestServer, api},
};
use ticketing_events::{
    Cents, Envelope, Event, OrderCancelled, OrderCreated, OrderStatus, OrderTicket, Subject,
    TicketRef,
};
use ticketing_tickets::{Tickets, cache::TicketCache};
use uuid::Uuid;

/// Connections in the app's pool.
pub const POOL_SIZE: u32 = 8;

/// The longest a test waits for an effect (an event handled, a row changed) before failing.
pub const WAIT: Duration = Duration::from_secs(15);

/// A running tickets service and what a test needs to poke at it. Fields drop in order: the
/// server stops first, then the stream, the database and the Redis keys go.
pub struct TestApp {
    /// Stops the server when the app drops.
    _server: TestServer,
    /// The app's pool on the test database, also used by tests to look at rows.
    pub pool: PgPool,
    /// A bus on the test's own stream.
    pub bus: Bus,
    /// Address, HTTP client and session keys; `TestApp` derefs to it.
    pub api: ApiClient,
    _bus: TestBus,
    /// Creates the database and drops it with the app; its own pool stays idle (see
    /// [`spawn_app`]).
    _db: TestDb,
    _redis: RedisKeys,
}

/// The app with the default cache settings and the test session keys.
pub async fn spawn_app() -> TestApp {
    spawn_app_with_pool(POOL_SIZE, Duration::from_secs(10)).await
}

/// The app over a pool of `size` connections whose requests give up after `acquire_timeout`.
pub async fn spawn_app_with_pool(size: u32, acquire_timeout: Duration) -> TestApp {
    let namespace = testing::unique_namespace();
    let db = TestDb::create(&namespace, ticketing_tickets::NAME).await;
    // The app's own pool, sized for the test; `TestDb`'s pool is for looking at rows.
    let pool = db.app_pool_with(size, acquire_timeout).await;
    ticketing_tickets::migrate(&pool)
        .await
        .expect("migrate the tickets database");
    let test_bus = TestBus::create(&namespace).await;
    let bus = test_bus.bus.clone();
    let cache = TicketCache::new(
        &testing::redis_url(),
        namespace.redis_prefix(),
        CacheSettings::default(),
    )
    .expect("tickets cache");
    let keys = testing::session_keys();
    let component = ticketing_tickets::component(
        Tickets {
            pool: pool.clone(),
            cache,
        },
        &bus,
    );
    let server = TestServer::start(vec![component], keys.clone()).await;
    let api = ApiClient::new(server.url(""), keys);
    TestApp {
        _server: server,
        pool,
        bus,
        api,
        _bus: test_bus,
        _db: db,
        _redis: RedisKeys::of(&testing::redis_url(), &namespace),
    }
}

/// Reading tickets bodies out of a [`Reply`].
pub trait TicketReply {
    fn ticket(&self) -> TicketBody;
    fn tickets(&self) -> Vec<TicketBody>;
}

impl TicketReply for Reply {
    /// A ticket body, checked against the contract's shape.
    fn ticket(&self) -> TicketBody {
        ticket_of(&self.json())
    }

    /// An array of ticket bodies, each checked against the contract's shape.
    fn tickets(&self) -> Vec<TicketBody> {
        let body = self.json();
        body.as_array()
            .unwrap_or_else(|| panic!("not an array: {body}"))
            .iter()
            .map(ticket_of)
            .collect()
    }
}

/// A ticket as the API shows it: exactly `{id, title, price, userId, version, orderId}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TicketBody {
    pub id: Uuid,
    pub title: String,
    pub price: f64,
    pub user_id: Uuid,
    pub version: i64,
    pub order_id: Option<Uuid>,
}

/// Checks a ticket's JSON against the contract (every key present, `id` a string, `price` a
/// number) and decodes it.
pub fn ticket_of(value: &Value) -> TicketBody {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"));
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["id", "orderId", "price", "title", "userId", "version"],
        "ticket: {value}"
    );
    assert!(value["id"].is_string(), "id is not a string: {value}");
    assert!(value["price"].is_number(), "price is not a number: {value}");
    serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("ticket shape ({e}): {value}"))
}

/// A ticket as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TicketRow {
    pub id: Uuid,
    pub title: String,
    pub price_cents: i64,
    pub user_id: Uuid,
    pub version: i64,
    pub order_id: Option<Uuid>,
}

/// A valid ticket input.
pub fn ticket_input(title: &str, price: impl Into<Value>) -> Value {
    json!({"title": title, "price": price.into()})
}

/// An `order.created` envelope for an order of `ticket` (as the orders service would send).
pub fn order_created(ticket: &TicketBody, order_id: Uuid) -> Envelope<OrderCreated> {
    Envelope::new(OrderCreated {
        id: order_id,
        version: 0,
        status: OrderStatus::Created,
        user_id: Uuid::now_v7(),
        expires_at: time::OffsetDateTime::now_utc() + time::Duration::minutes(15),
        ticket: OrderTicket {
            id: ticket.id,
            price: Cents((ticket.price * 100.0).round() as i64),
        },
    })
}

/// An `order.cancelled` envelope for an order of `ticket_id`.
pub fn order_cancelled(ticket_id: Uuid, order_id: Uuid) -> Envelope<OrderCancelled> {
    Envelope::new(OrderCancelled {
        id: order_id,
        version: 1,
        ticket: TicketRef { id: ticket_id },
    })
}

impl TestApp {
    /// `POST /api/tickets` with a JSON body.
    pub async fn post_ticket(&self, user: Option<&User>, body: &Value) -> Reply {
        self.send(
            Method::POST,
            "/api/tickets",
            user,
            Some((Some("application/json"), body.to_string())),
        )
        .await
    }

    /// `PUT /api/tickets/<id>` with a JSON body.
    pub async fn put_ticket(&self, user: Option<&User>, id: &str, body: &Value) -> Reply {
        self.send(
            Method::PUT,
            &format!("/api/tickets/{id}"),
            user,
            Some((Some("application/json"), body.to_string())),
        )
        .await
    }

    /// Creates a ticket and asserts it worked.
    pub async fn create_ticket(
        &self,
        user: &User,
        title: &str,
        price: impl Into<Value>,
    ) -> TicketBody {
        let reply = self
            .post_ticket(Some(user), &ticket_input(title, price))
            .await;
        reply.assert_status(StatusCode::CREATED);
        reply.ticket()
    }

    /// `GET /api/tickets/<id>`, asserting 200.
    pub async fn show(&self, id: Uuid) -> TicketBody {
        let reply = self.get(&format!("/api/tickets/{id}")).await;
        reply.assert_status(StatusCode::OK);
        reply.ticket()
    }

    /// `GET /api/tickets<query>`, asserting 200.
    pub async fn list(&self, query: &str) -> Vec<TicketBody> {
        let reply = self.get(&format!("/api/tickets{query}")).await;
        reply.assert_status(StatusCode::OK);
        reply.tickets()
    }

    // --- the database -------------------------------------------------------------------

    pub async fn row(&self, id: Uuid) -> Option<TicketRow> {
        sqlx::query_as(
            "SELECT id, title, price_cents, user_id, version, order_id FROM tickets WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .expect("read ticket")
    }

    pub async fn ticket_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM tickets")
            .fetch_one(&self.pool)
            .await
            .expect("count tickets")
    }

    /// Events of one subject written to the outbox (sent or not).
    pub async fn outbox_count(&self, subject: Subject) -> i64 {
        api::outbox_count(&self.pool, subject).await
    }

    /// Waits until the stored ticket satisfies `done`; panics with the last row otherwise.
    pub async fn wait_for_row(
        &self,
        id: Uuid,
        what: &str,
        done: impl Fn(&TicketRow) -> bool,
    ) -> TicketRow {
        let done = &done;
        let found = testing::eventually(WAIT, || async move {
            self.row(id).await.filter(|row| done(row))
        })
        .await;
        match found {
            Some(row) => row,
            None => panic!("ticket never {what}: now {:?}", self.row(id).await),
        }
    }

    // --- the bus ------------------------------------------------------------------------

    /// Publishes an event on the test's stream and waits for JetStream's ack. Deliberately
    /// without `Nats-Msg-Id`: publishing the same envelope twice then really delivers it
    /// twice, as a redelivery after a lost ack would.
    pub async fn publish<T: Event>(&self, envelope: &Envelope<T>) {
        api::publish(&self.bus, envelope).await;
    }

    /// Every event of type `T` in the stream, oldest first.
    pub async fn published<T: Event>(&self) -> Vec<Envelope<T>> {
        api::published(&self.bus).await
    }

    /// Waits until `expected` events of type `T` satisfying `filter` are in the stream, and
    /// returns them; panics if fewer arrive in time.
    pub async fn wait_for_events<T: Event>(
        &self,
        expected: usize,
        filter: impl Fn(&Envelope<T>) -> bool,
    ) -> Vec<Envelope<T>> {
        let filter = &filter;
        testing::eventually(WAIT, || async move {
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

    /// Events of type `T` about one ticket, by their `data` as JSON, oldest first.
    pub async fn ticket_events<T: Event>(&self, ticket_id: Uuid) -> Vec<Value> {
        self.published::<T>()
            .await
            .into_iter()
            .map(|event| serde_json::to_value(event.data).expect("event data"))
            .filter(|data| data["id"] == json!(ticket_id))
            .collect()
    }

    /// Waits until tickets' listener of `subject` has handled every message published on it.
    pub async fn wait_until_handled(&self, subject: Subject) {
        api::wait_until_handled(&self.bus, ticketing_tickets::NAME, subject, WAIT).await;
    }

    /// Waits until both order listeners are idle and every outbox row has been published:
    /// nothing the test caused is still under way.
    pub async fn settle(&self) {
        self.wait_until_handled(Subject::OrderCreated).await;
        self.wait_until_handled(Subject::OrderCancelled).await;
        api::wait_until_outbox_empty(&self.pool, WAIT).await;
    }
}

impl std::ops::Deref for TestApp {
    type Target = ApiClient;

    fn deref(&self) -> &ApiClient {
        &self.api
    }
}
