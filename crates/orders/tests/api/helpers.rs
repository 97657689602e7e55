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
use ticketing_common::testing::{
    self, TcpGate,
    app::{self, Backing, Harness, Setup},
};
pub use ticketing_common::testing::{
    api::{Reply, User},
    app::POOL_SIZE,
};
use ticketing_events::{
    Cents, Envelope, Event, ExpirationComplete, PaymentCreated, PaymentRefunded, TicketCreated,
    TicketUpdated, TicketWithdrawn,
};
use ticketing_orders::{MIGRATOR, NAME, Orders};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use uuid::Uuid;

/// A running orders service and what a test needs to poke at it; derefs to the [`Harness`]
/// (pool, bus, waits) and through it to the `ApiClient` (address, client, users).
pub struct TestApp {
    /// The service as the server runs it, for calling flows (the sweep) directly.
    pub orders: Orders,
    app: Harness,
}

impl std::ops::Deref for TestApp {
    type Target = Harness;

    fn deref(&self) -> &Harness {
        &self.app
    }
}

/// The app with the default window (900 s) and grace (60 s), and a sweep that does not run
/// during a test.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|orders| orders).await
}

/// The app with timings changed by `configure` (it gets the defaults of [`spawn_app`]).
pub async fn spawn_app_with(configure: impl FnOnce(Orders) -> Orders) -> TestApp {
    let backing = Setup::new(NAME, &MIGRATOR).create().await;
    let orders = configure(orders_over(backing.pool.clone()));
    serve(backing, orders).await
}

/// The app with its pool connecting through a [`TcpGate`] to the test server, so a test can
/// take the database away from it (and give it back); a request for a connection gives up
/// after a second.
pub async fn spawn_app_behind_gate() -> (TestApp, TcpGate) {
    // The backing's pool is the test's, for looking at rows around the gate.
    let backing = Setup::new(NAME, &MIGRATOR)
        .pool(2, Duration::from_secs(10))
        .create()
        .await;
    let options = &backing.db().target.options;
    let server: SocketAddr = format!("{}:{}", options.get_host(), options.get_port())
        .parse()
        .expect("the database server's address");
    let gate = TcpGate::start(server).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(POOL_SIZE)
        .acquire_timeout(Duration::from_secs(1))
        .connect_with(options.clone().host("127.0.0.1").port(gate.port))
        .await
        .expect("a pool through the gate");
    (serve(backing, orders_over(pool)).await, gate)
}

/// The service's defaults, with a sweep that does not run during a test.
fn orders_over(pool: sqlx::PgPool) -> Orders {
    Orders {
        sweep_interval: Duration::from_secs(3600),
        ..Orders::new(pool)
    }
}

async fn serve(backing: Backing, orders: Orders) -> TestApp {
    let component = ticketing_orders::component(orders.clone(), backing.bus());
    let app = backing
        .serve(vec![component], testing::session_keys())
        .await;
    TestApp { orders, app }
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
        [
            "created",
            "awaiting:payment",
            "cancelled",
            "complete",
            "refunded"
        ]
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

/// A `ticket.withdrawn` envelope carrying version `version`.
pub fn ticket_withdrawn(id: Uuid, version: i64) -> Envelope<TicketWithdrawn> {
    Envelope::new(TicketWithdrawn { id, version })
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

/// A `payment.refunded` envelope for an order, with a fresh refund id.
pub fn payment_refunded(order_id: Uuid) -> Envelope<PaymentRefunded> {
    Envelope::new(PaymentRefunded {
        id: Uuid::now_v7(),
        order_id,
        refund_id: format!("re_{}", Uuid::new_v4().simple()),
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
        self.send_json(Method::POST, "/api/orders", user, body)
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

    /// Waits until the stored order satisfies `done`; panics with the last row otherwise.
    pub async fn wait_for_order(
        &self,
        id: Uuid,
        what: &str,
        done: impl Fn(&OrderRow) -> bool,
    ) -> OrderRow {
        let what = format!("order never {what}");
        app::wait_for(&what, || self.order_row(id), done).await
    }

    /// Waits until the replica's ticket satisfies `done`; panics with the last row otherwise.
    pub async fn wait_for_ticket(
        &self,
        id: Uuid,
        what: &str,
        done: impl Fn(&TicketRow) -> bool,
    ) -> TicketRow {
        let what = format!("ticket never {what}");
        app::wait_for(&what, || self.ticket_row(id), done).await
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

    /// Events of type `T` about one order (`data.id`), by their `data` as JSON, oldest first.
    pub async fn order_events<T: Event>(&self, order_id: Uuid) -> Vec<Value> {
        self.events_about::<T>("id", order_id).await
    }

    /// Waits until `expected` events of type `T` about one order are in the stream, and
    /// returns their `data`; panics if fewer arrive in time.
    pub async fn wait_for_order_events<T: Event>(
        &self,
        order_id: Uuid,
        expected: usize,
    ) -> Vec<Value> {
        self.wait_for_events_about::<T>("id", order_id, expected)
            .await
    }
}
