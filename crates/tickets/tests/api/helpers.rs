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
pub use ticketing_common::testing::{
    api::{Reply, User},
    app::{POOL_SIZE, WAIT},
};
use ticketing_common::{
    bus::Bus,
    cache::CacheSettings,
    testing::{
        self, RedisKeys,
        app::{self, Harness, Setup},
    },
};
use ticketing_events::{
    Cents, Envelope, Event, OrderCancelled, OrderCompleted, OrderCreated, OrderRefunded,
    OrderStatus, OrderTicket, TicketRef,
};
use ticketing_tickets::{MIGRATOR, NAME, Tickets, cache::TicketCache};
use uuid::Uuid;

/// A running tickets service and what a test needs to poke at it; derefs to the [`Harness`]
/// (pool, bus, waits) and through it to the `ApiClient` (address, client, users). The server
/// stops first, then the stream, the database and the Redis keys go.
pub struct TestApp {
    app: Harness,
    /// The harness's bus on the test's own stream, for tests that look at its consumers.
    pub bus: Bus,
    _redis: RedisKeys,
}

impl std::ops::Deref for TestApp {
    type Target = Harness;

    fn deref(&self) -> &Harness {
        &self.app
    }
}

/// The app with the default cache settings and the test session keys.
pub async fn spawn_app() -> TestApp {
    spawn_app_with_pool(POOL_SIZE, Duration::from_secs(10)).await
}

/// The app over a pool of `size` connections whose requests give up after `acquire_timeout`.
pub async fn spawn_app_with_pool(size: u32, acquire_timeout: Duration) -> TestApp {
    let backing = Setup::new(NAME, &MIGRATOR)
        .pool(size, acquire_timeout)
        .create()
        .await;
    let redis_url = testing::redis_url();
    let prefix = backing.namespace.redis_prefix();
    let cache = TicketCache::new(&redis_url, prefix, CacheSettings::default()).expect("cache");
    let redis = RedisKeys::of(&redis_url, &backing.namespace);
    let pool = backing.pool.clone();
    let component = ticketing_tickets::component(Tickets { pool, cache }, backing.bus());
    let app = backing
        .serve(vec![component], testing::session_keys())
        .await;
    TestApp {
        bus: app.bus().clone(),
        app,
        _redis: redis,
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

/// A ticket as the API shows it: exactly `{id, title, price, userId, version, orderId,
/// status}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TicketBody {
    pub id: Uuid,
    pub title: String,
    pub price: f64,
    pub user_id: Uuid,
    pub version: i64,
    pub order_id: Option<Uuid>,
    pub status: String,
    /// For a seat of an event only.
    #[serde(default)]
    pub event_id: Option<Uuid>,
    #[serde(default)]
    pub seat: Option<String>,
}

/// Checks a ticket's JSON against the contract (every key present, `id` a string, `price` a
/// number) and decodes it.
pub fn ticket_of(value: &Value) -> TicketBody {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"));
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    // A seat of an event carries both `eventId` and `seat` (a string); other tickets neither.
    if object.contains_key("eventId") || object.contains_key("seat") {
        assert!(
            value["eventId"].is_string() && value["seat"].is_string(),
            "seat: {value}"
        );
        keys.retain(|key| !["eventId", "seat"].contains(key));
    }
    assert_eq!(
        keys,
        [
            "id", "orderId", "price", "status", "title", "userId", "version"
        ],
        "ticket: {value}"
    );
    let status = value["status"].as_str().unwrap_or_default();
    let expected = match (value["orderId"].is_null(), status) {
        (true, _) => "available",
        (false, "sold") => "sold",
        (false, _) => "reserved",
    };
    assert_eq!(status, expected, "status and orderId disagree: {value}");
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

/// An `order.completed` envelope: the order holding `ticket_id` was paid.
pub fn order_completed(ticket_id: Uuid, order_id: Uuid) -> Envelope<OrderCompleted> {
    Envelope::new(OrderCompleted {
        id: order_id,
        version: 1,
        ticket: TicketRef { id: ticket_id },
    })
}

/// An `order.refunded` envelope for a paid order of `ticket_id`.
pub fn order_refunded(ticket_id: Uuid, order_id: Uuid) -> Envelope<OrderRefunded> {
    Envelope::new(OrderRefunded {
        id: order_id,
        version: 2,
        ticket: TicketRef { id: ticket_id },
    })
}

impl TestApp {
    /// `POST /api/tickets` with a JSON body.
    pub async fn post_ticket(&self, user: Option<&User>, body: &Value) -> Reply {
        self.send_json(Method::POST, "/api/tickets", user, body)
            .await
    }

    /// `PUT /api/tickets/<id>` with a JSON body.
    pub async fn put_ticket(&self, user: Option<&User>, id: &str, body: &Value) -> Reply {
        self.send_json(Method::PUT, &format!("/api/tickets/{id}"), user, body)
            .await
    }

    /// `DELETE /api/tickets/<id>`: withdraws the ticket.
    pub async fn delete_ticket(&self, user: Option<&User>, id: &str) -> Reply {
        self.send(Method::DELETE, &format!("/api/tickets/{id}"), user, None)
            .await
    }

    /// `GET /api/tickets/mine<query>` as `user`, asserting 200.
    pub async fn mine(&self, user: &User, query: &str) -> Vec<TicketBody> {
        let reply = self
            .send(
                Method::GET,
                &format!("/api/tickets/mine{query}"),
                Some(user),
                None,
            )
            .await;
        reply.assert_status(StatusCode::OK);
        reply.tickets()
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

    /// The app's keys in Redis now.
    pub async fn redis_keys(&self) -> Vec<String> {
        let mut keys = self._redis.list().await;
        keys.sort();
        keys
    }

    /// Waits until `GET /api/tickets/<id>` shows the ticket in `status`.
    pub async fn wait_for_status(&self, id: Uuid, status: &str) -> TicketBody {
        let what = format!("ticket never {status}");
        app::wait_for(
            &what,
            || async { Some(self.show(id).await) },
            |t| t.status == status,
        )
        .await
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

    /// Waits until the stored ticket satisfies `done`; panics with the last row otherwise.
    pub async fn wait_for_row(
        &self,
        id: Uuid,
        what: &str,
        done: impl Fn(&TicketRow) -> bool,
    ) -> TicketRow {
        let what = format!("ticket never {what}");
        app::wait_for(&what, || self.row(id), done).await
    }

    // --- the bus ------------------------------------------------------------------------

    /// Events of type `T` about one ticket, by their `data` as JSON, oldest first.
    pub async fn ticket_events<T: Event>(&self, ticket_id: Uuid) -> Vec<Value> {
        self.events_about::<T>("id", ticket_id).await
    }
}
