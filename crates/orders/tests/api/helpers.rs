//! The orders service on a random port, over a database and a stream of its own, and typed
//! ways to talk to it and to look behind it.
//!
//! Every [`TestApp`] has its own namespace, hence its own database (dropped with it) and its
//! own JetStream stream and subjects (deleted with it); tests never share state. The server
//! runs the component's tasks too: outbox relay, the four listeners and the sweep (whose
//! interval tests leave at an hour unless they are about it, and call
//! [`ticketing_orders::flows::sweep_expired`] directly instead). Tests play the tickets,
//! expiration and payments services by publishing their events straight to the stream, and
//! read back what orders published from the same stream.

use std::{net::SocketAddr, time::Duration};

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;
pub use ticketing_common::testing::api::{ApiClient, Reply, User};
use ticketing_common::{
    bus::Bus,
    testing::{self, TcpGate, TestBus, TestDb, TestServer, api},
};
use ticketing_events::{
    Cents, Envelope, Event, ExpirationComplete, PaymentCreated, Subject, TicketCreated,
    TicketUpdated,
};
use ticketing_orders::Orders;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use uuid::Uuid;

/// Connections in the app's pool: far fewer than the racers of the race tests.
pub const POOL_SIZE: u32 = 8;

/// The longest a test waits for an effect (an event handled, a row changed) before failing.
pub const WAIT: Duration = Duration::from_secs(15);

/// A running orders service and what a test needs to poke at it. Fields drop in order: the
/// server stops first, then the stream and the database go.
pub struct TestApp {
    /// Stops the server when the app drops.
    _server: TestServer,
    /// The app's pool on the test database, also used by tests to look at rows.
    pub pool: PgPool,
    /// The service as the server runs it, for calling flows (the sweep) directly.
    pub orders: Orders,
    /// A bus on the test's own stream.
    pub bus: Bus,
    /// Address, HTTP client and session keys; `TestApp` derefs to it.
    pub api: ApiClient,
    _bus: TestBus,
    /// Creates the database and drops it with the app; its own pool stays idle (see
    /// [`spawn_app_with`]).
    _db: TestDb,
}

/// The app with the default window (900 s) and grace (60 s), and a sweep that does not run
/// during a test.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|orders| orders).await
}

/// The app with timings changed by `configure` (it gets the defaults of [`spawn_app`]).
pub async fn spawn_app_with(configure: impl FnOnce(Orders) -> Orders) -> TestApp {
    let namespace = testing::unique_namespace();
    let db = TestDb::create(&namespace, ticketing_orders::NAME).await;
    // The app's own pool, sized for the test; `TestDb`'s pool is for looking at rows.
    let pool = db.app_pool(POOL_SIZE).await;
    ticketing_orders::migrate(&pool)
        .await
        .expect("migrate the orders database");
    let test_bus = TestBus::create(&namespace).await;
    let bus = test_bus.bus.clone();
    let keys = testing::session_keys();
    let orders = configure(Orders {
        sweep_interval: Duration::from_secs(3600),
        ..Orders::new(pool.clone())
    });
    let component = ticketing_orders::component(orders.clone(), &bus);
    let server = TestServer::start(vec![component], keys.clone()).await;
    let api = ApiClient::new(server.url(""), keys);
    TestApp {
        _server: server,
        pool,
        orders,
        bus,
        api,
        _bus: test_bus,
        _db: db,
    }
}

/// Reading orders bodies out of a [`Reply`].
pub trait OrderReply {
    fn order(&self) -> OrderBody;
    fn orders(&self) -> Vec<OrderBody>;
}

impl OrderReply for Reply {
    /// An order body, checked against the contract's shape.
    fn order(&self) -> OrderBody {
        order_of(&self.json())
    }

    /// An array of order bodies, each checked against the contract's shape.
    fn orders(&self) -> Vec<OrderBody> {
        let body = self.json();
        body.as_array()
            .unwrap_or_else(|| panic!("not an array: {body}"))
            .iter()
            .map(order_of)
            .collect()
    }
}

/// An order as the API shows it: exactly `{id, userId, status, expiresAt, version, ticket:
/// {id, title, price}}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderBody {
    pub id: Uuid,
    pub user_id: Uuid,
    pub status: String,
    pub expires_at: String,
    pub version: i64,
    pub ticket: TicketBody,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketBody {
    pub id: Uuid,
    pub title: String,
    pub price: f64,
}

impl OrderBody {
    /// `expiresAt`, which must be RFC 3339 in UTC.
    pub fn expires_at(&self) -> OffsetDateTime {
        assert!(
            self.expires_at.ends_with('Z'),
            "expiresAt not in UTC: {}",
            self.expires_at
        );
        OffsetDateTime::parse(&self.expires_at, &Rfc3339)
            .unwrap_or_else(|e| panic!("expiresAt not RFC 3339 ({e}): {}", self.expires_at))
    }
}

/// Checks an order's JSON against the contract (every key present, ids strings, the price a
/// number) and decodes it.
pub fn order_of(value: &Value) -> OrderBody {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"));
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["expiresAt", "id", "status", "ticket", "userId", "version"],
        "order: {value}"
    );
    assert!(value["id"].is_string(), "id is not a string: {value}");
    assert!(
        value["ticket"]["price"].is_number(),
        "price is not a number: {value}"
    );
    assert!(
        ["created", "awaiting:payment", "cancelled", "complete"]
            .contains(&value["status"].as_str().unwrap_or_default()),
        "status: {value}"
    );
    let order: OrderBody = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("order shape ({e}): {value}"));
    order.expires_at();
    order
}

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OrderRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub ticket_id: Uuid,
    pub status: String,
    pub expires_at: OffsetDateTime,
    pub version: i64,
}

/// A replica ticket as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TicketRow {
    pub id: Uuid,
    pub title: String,
    pub price_cents: i64,
    pub version: i64,
}

/// A `ticket.created` envelope, as the tickets service would send it.
pub fn ticket_created(id: Uuid, title: &str, price_cents: i64) -> Envelope<TicketCreated> {
    Envelope::new(TicketCreated {
        id,
        version: 0,
        title: title.to_owned(),
        price: Cents(price_cents),
        user_id: Uuid::now_v7(),
    })
}

/// A `ticket.updated` envelope carrying version `version`.
pub fn ticket_updated(
    id: Uuid,
    version: i64,
    title: &str,
    price_cents: i64,
) -> Envelope<TicketUpdated> {
    Envelope::new(TicketUpdated {
        id,
        version,
        title: title.to_owned(),
        price: Cents(price_cents),
        user_id: Uuid::now_v7(),
        order_id: None,
    })
}

/// An `expiration.complete` envelope for an order.
pub fn expiration_complete(order_id: Uuid) -> Envelope<ExpirationComplete> {
    Envelope::new(ExpirationComplete { order_id })
}

/// A `payment.created` envelope for an order, with a fresh payment id.
pub fn payment_created(order_id: Uuid) -> Envelope<PaymentCreated> {
    Envelope::new(PaymentCreated {
        id: Uuid::now_v7(),
        order_id,
        charge_id: format!("ch_{}", Uuid::new_v4().simple()),
    })
}

/// The current value of a counter without labels in the process's Prometheus output (0 if it
/// was never incremented).
pub fn counter(name: &str) -> u64 {
    ticketing_common::metrics::render()
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

impl TestApp {
    /// `POST /api/orders` with a JSON body.
    pub async fn post_order(&self, user: Option<&User>, body: &Value) -> Reply {
        self.send(
            Method::POST,
            "/api/orders",
            user,
            Some((Some("application/json"), body.to_string())),
        )
        .await
    }

    /// `POST /api/orders {ticketId}`.
    pub async fn order(&self, user: &User, ticket_id: Uuid) -> Reply {
        self.post_order(Some(user), &json!({ "ticketId": ticket_id }))
            .await
    }

    /// Orders a ticket and asserts it worked.
    pub async fn create_order(&self, user: &User, ticket_id: Uuid) -> OrderBody {
        let reply = self.order(user, ticket_id).await;
        reply.assert_status(StatusCode::CREATED);
        reply.order()
    }

    /// `GET /api/orders`.
    pub async fn list(&self, user: Option<&User>) -> Reply {
        self.send(Method::GET, "/api/orders", user, None).await
    }

    /// `GET /api/orders/<id>`.
    pub async fn show(&self, user: Option<&User>, id: &str) -> Reply {
        self.send(Method::GET, &format!("/api/orders/{id}"), user, None)
            .await
    }

    /// `DELETE /api/orders/<id>`.
    pub async fn cancel(&self, user: Option<&User>, id: &str) -> Reply {
        self.send(Method::DELETE, &format!("/api/orders/{id}"), user, None)
            .await
    }

    /// Cancels an order as its owner and asserts it worked.
    pub async fn cancel_order(&self, user: &User, id: Uuid) {
        let reply = self.cancel(Some(user), &id.to_string()).await;
        reply.assert_status(StatusCode::NO_CONTENT);
        assert_eq!(reply.text, "", "a 204 has no body");
    }

    // --- the database -------------------------------------------------------------------

    /// Puts a ticket straight into the replica (version 0), for tests not about the listener.
    pub async fn insert_ticket(&self, title: &str, price_cents: i64) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query("INSERT INTO tickets (id, title, price_cents, version) VALUES ($1, $2, $3, 0)")
            .bind(id)
            .bind(title)
            .bind(price_cents)
            .execute(&self.pool)
            .await
            .expect("insert replica ticket");
        id
    }

    /// Puts an order straight into the table, bypassing the API and the outbox: an order
    /// whose expiry `expires_in` from now (negative: in the past) nobody will announce.
    pub async fn insert_order(
        &self,
        user_id: Uuid,
        ticket_id: Uuid,
        status: &str,
        expires_in: time::Duration,
    ) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO orders (id, user_id, ticket_id, status, expires_at)
             VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))",
        )
        .bind(id)
        .bind(user_id)
        .bind(ticket_id)
        .bind(status)
        .bind(expires_in.as_seconds_f64())
        .execute(&self.pool)
        .await
        .expect("insert order");
        id
    }

    pub async fn ticket_row(&self, id: Uuid) -> Option<TicketRow> {
        sqlx::query_as("SELECT id, title, price_cents, version FROM tickets WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .expect("read replica ticket")
    }

    pub async fn order_row(&self, id: Uuid) -> Option<OrderRow> {
        sqlx::query_as(
            "SELECT id, user_id, ticket_id, status, expires_at, version FROM orders WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .expect("read order")
    }

    /// `(status, version)` of a stored order; panics if there is none.
    pub async fn order_state(&self, id: Uuid) -> (String, i64) {
        let row = self.order_row(id).await.expect("order stored");
        (row.status, row.version)
    }

    /// Every order of a ticket, oldest first.
    pub async fn orders_of_ticket(&self, ticket_id: Uuid) -> Vec<OrderRow> {
        sqlx::query_as(
            "SELECT id, user_id, ticket_id, status, expires_at, version FROM orders
             WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(ticket_id)
        .fetch_all(&self.pool)
        .await
        .expect("read orders")
    }

    pub async fn order_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM orders")
            .fetch_one(&self.pool)
            .await
            .expect("count orders")
    }

    /// Events of one subject written to the outbox (sent or not).
    pub async fn outbox_count(&self, subject: Subject) -> i64 {
        api::outbox_count(&self.pool, subject).await
    }

    /// `(payment_id, order_id, charge_id)` of every recorded payment conflict.
    pub async fn payment_conflicts(&self) -> Vec<(Uuid, Uuid, String)> {
        sqlx::query_as("SELECT payment_id, order_id, charge_id FROM payment_conflicts")
            .fetch_all(&self.pool)
            .await
            .expect("read payment conflicts")
    }

    /// Waits until the stored order satisfies `done`; panics with the last row otherwise.
    pub async fn wait_for_order(
        &self,
        id: Uuid,
        what: &str,
        done: impl Fn(&OrderRow) -> bool,
    ) -> OrderRow {
        let done = &done;
        let found = testing::eventually(WAIT, || async move {
            self.order_row(id).await.filter(|row| done(row))
        })
        .await;
        match found {
            Some(row) => row,
            None => panic!("order never {what}: now {:?}", self.order_row(id).await),
        }
    }

    /// Waits until the replica's ticket satisfies `done`; panics with the last row otherwise.
    pub async fn wait_for_ticket(
        &self,
        id: Uuid,
        what: &str,
        done: impl Fn(&TicketRow) -> bool,
    ) -> TicketRow {
        let done = &done;
        let found = testing::eventually(WAIT, || async move {
            self.ticket_row(id).await.filter(|row| done(row))
        })
        .await;
        match found {
            Some(row) => row,
            None => panic!("ticket never {what}: now {:?}", self.ticket_row(id).await),
        }
    }

    /// Announces a ticket the way the tickets service does and waits until the replica
    /// knows it.
    pub async fn seed_ticket(&self, title: &str, price_cents: i64) -> Uuid {
        let id = Uuid::now_v7();
        self.publish(&ticket_created(id, title, price_cents)).await;
        self.wait_for_ticket(id, "learnt", |_| true).await;
        id
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

    /// Events of type `T` about one order (`data.id`), by their `data` as JSON, oldest first.
    pub async fn order_events<T: Event>(&self, order_id: Uuid) -> Vec<Value> {
        self.published::<T>()
            .await
            .into_iter()
            .map(|event| serde_json::to_value(event.data).expect("event data"))
            .filter(|data| data["id"] == json!(order_id))
            .collect()
    }

    /// Waits until `expected` events of type `T` about one order are in the stream, and
    /// returns their `data`; panics if fewer arrive in time.
    pub async fn wait_for_order_events<T: Event>(
        &self,
        order_id: Uuid,
        expected: usize,
    ) -> Vec<Value> {
        testing::eventually(WAIT, || async move {
            let events = self.order_events::<T>(order_id).await;
            (events.len() >= expected).then_some(events)
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "fewer than {expected} {} events arrived for order {order_id}",
                T::SUBJECT.as_str()
            )
        })
    }

    /// Whether orders' consumer of `subject` has handled (acked or given up on) every message
    /// published on it so far.
    pub async fn consumer_drained(&self, subject: Subject) -> bool {
        api::consumer_drained(&self.bus, ticketing_orders::NAME, subject).await
    }

    /// Waits until orders' listener of `subject` has handled every message published on it.
    pub async fn wait_until_handled(&self, subject: Subject) {
        api::wait_until_handled(&self.bus, ticketing_orders::NAME, subject, WAIT).await;
    }

    /// Waits until a listener has seen a message of `subject` more than once: an early event
    /// that is waiting for its predecessor.
    pub async fn wait_until_redelivered(&self, subject: Subject) {
        let parked = testing::eventually(WAIT, || async {
            let mut consumer = self
                .bus
                .consumer(ticketing_orders::NAME, subject)
                .await
                .ok()?;
            let info = consumer.info().await.ok()?;
            (info.num_redelivered >= 1).then_some(())
        })
        .await;
        assert!(parked.is_some(), "no {subject} event was ever retried");
    }

    /// Waits until every listener is idle and every outbox row has been published: nothing
    /// the test caused is still under way.
    pub async fn settle(&self) {
        for subject in [
            Subject::TicketCreated,
            Subject::TicketUpdated,
            Subject::ExpirationComplete,
            Subject::PaymentCreated,
        ] {
            self.wait_until_handled(subject).await;
        }
        api::wait_until_outbox_empty(&self.pool, WAIT).await;
    }
}

impl std::ops::Deref for TestApp {
    type Target = ApiClient;

    fn deref(&self) -> &ApiClient {
        &self.api
    }
}

/// The app with its pool connecting through a [`TcpGate`] to the test server, so a test can
/// take the database away from it (and give it back); a request for a connection gives up
/// after a second.
pub async fn spawn_app_behind_gate() -> (TestApp, TcpGate) {
    let namespace = testing::unique_namespace();
    let db = TestDb::create(&namespace, ticketing_orders::NAME).await;
    // For the test to look at rows, around the gate.
    let direct = db.app_pool(2).await;
    ticketing_orders::migrate(&direct)
        .await
        .expect("migrate the orders database");
    let server: SocketAddr = format!(
        "{}:{}",
        db.target.options.get_host(),
        db.target.options.get_port()
    )
    .parse()
    .expect("the database server's address");
    let gate = TcpGate::start(server).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(POOL_SIZE)
        .acquire_timeout(Duration::from_secs(1))
        .connect_with(db.target.options.clone().host("127.0.0.1").port(gate.port))
        .await
        .expect("a pool through the gate");
    let test_bus = TestBus::create(&namespace).await;
    let bus = test_bus.bus.clone();
    let keys = testing::session_keys();
    let orders = Orders {
        sweep_interval: Duration::from_secs(3600),
        ..Orders::new(pool.clone())
    };
    let component = ticketing_orders::component(orders.clone(), &bus);
    let server = TestServer::start(vec![component], keys.clone()).await;
    let api = ApiClient::new(server.url(""), keys);
    let app = TestApp {
        _server: server,
        pool: direct,
        orders,
        bus,
        api,
        _bus: test_bus,
        _db: db,
    };
    (app, gate)
}
