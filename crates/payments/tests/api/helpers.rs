//! The payments service on a random port, over a database and a stream of its own, and typed
//! ways to talk to it and to look behind it.
//!
//! Every [`TestApp`] has its own namespace, hence its own database (dropped with it) and its
//! own JetStream stream and subjects (deleted with it). The server runs the component's
//! tasks: the outbox relay and the two order listeners. Tests play the orders service by
//! publishing its events straight to the stream, play Stripe's webhook by signing events with
//! [`WEBHOOK_SECRET`], and read back what payments published from the same stream. The
//! development provider is shared with the test ([`TestApp::dev`]) so tests can count its
//! calls and charges.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use reqwest::{Method, StatusCode, header::CONTENT_TYPE};
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::PgPool;
pub use ticketing_common::testing::api::{ApiClient, Reply, User};
use ticketing_common::{
    Secret,
    bus::Bus,
    testing::{self, TestBus, TestDb, TestServer, api},
};
use ticketing_events::{
    Cents, Envelope, Event, OrderCancelled, OrderCreated, OrderStatus, OrderTicket, Subject,
    TicketRef,
};
use ticketing_payments::{
    Payments,
    provider::{DevProvider, Provider, StripeClient},
};
use time::OffsetDateTime;
use uuid::Uuid;

/// Connections in the app's pool: far fewer than the racers of the race tests.
pub const POOL_SIZE: u32 = 8;

/// The longest a test waits for an effect (an event handled, a row changed) before failing.
pub const WAIT: Duration = Duration::from_secs(15);

/// The webhook signing secret every test app is configured with.
pub const WEBHOOK_SECRET: &str = "whsec_test_0123456789abcdef";

/// A running payments service and what a test needs to poke at it. Fields drop in order:
/// the server stops first, then the stream and the database go.
pub struct TestApp {
    /// Stops the server when the app drops.
    _server: TestServer,
    /// The app's pool on the test database, also used by tests to look at rows.
    pub pool: PgPool,
    /// The service as the server runs it.
    pub payments: Payments,
    /// A bus on the test's own stream.
    pub bus: Bus,
    /// Address, HTTP client and session keys; `TestApp` derefs to it.
    pub api: ApiClient,
    _bus: TestBus,
    /// Creates the database and drops it with the app; its own pool stays idle (see
    /// [`spawn_app_with`]).
    _db: TestDb,
}

/// The app with the development provider (answering at once) and [`WEBHOOK_SECRET`].
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|payments| payments).await
}

/// The app with the development provider answering after `delay`, so a charge stays in
/// flight while other requests arrive.
pub async fn spawn_app_with_slow_provider(delay: Duration) -> TestApp {
    spawn_app_with(|payments| Payments {
        provider: Provider::Dev(DevProvider::with_delay(delay)),
        ..payments
    })
    .await
}

/// The app charging through Stripe at `api_base` (a wiremock server), with a short timeout.
pub async fn spawn_app_with_stripe(api_base: &str, timeout: Duration) -> TestApp {
    let stripe = StripeClient::with_timeout(stripe_key(), api_base, timeout).expect("client");
    spawn_app_with(|payments| Payments {
        provider: Provider::Stripe(stripe),
        ..payments
    })
    .await
}

/// The secret key tests give the Stripe client.
pub fn stripe_key() -> Secret<String> {
    Secret::new("sk_test_payments_key".into())
}

/// The app with settings changed by `configure` (it gets the defaults of [`spawn_app`]).
pub async fn spawn_app_with(configure: impl FnOnce(Payments) -> Payments) -> TestApp {
    let namespace = testing::unique_namespace();
    let db = TestDb::create(&namespace, ticketing_payments::NAME).await;
    // The app's own pool (see `TestDb::app_pool`); `TestDb`'s pool is for looking at rows.
    let pool = db.app_pool(POOL_SIZE).await;
    ticketing_payments::migrate(&pool)
        .await
        .expect("migrate the payments database");
    let test_bus = TestBus::create(&namespace).await;
    let bus = test_bus.bus.clone();
    let keys = testing::session_keys();
    let payments = configure(Payments {
        webhook_secret: Some(Secret::new(WEBHOOK_SECRET.into())),
        ..Payments::new(pool.clone())
    });
    let component = ticketing_payments::component(payments.clone(), &bus);
    let server = TestServer::start(vec![component], keys.clone()).await;
    // Generous: some tests make the provider slow or time out on purpose.
    let api = ApiClient::with_timeout(server.url(""), keys, Duration::from_secs(60));
    TestApp {
        _server: server,
        pool,
        payments,
        bus,
        api,
        _bus: test_bus,
        _db: db,
    }
}

/// Reading payments' answers out of a [`Reply`].
pub trait PaymentReply {
    fn payment_id(&self) -> Uuid;
    fn created(&self) -> Uuid;
    fn error_message(&self) -> String;
}

impl PaymentReply for Reply {
    /// The payment id of a `{id}` body: exactly that one key, a UUID string.
    fn payment_id(&self) -> Uuid {
        let body = self.json();
        let object = body
            .as_object()
            .unwrap_or_else(|| panic!("not an object: {body}"));
        assert_eq!(
            object.keys().collect::<Vec<_>>(),
            ["id"],
            "payment body: {body}"
        );
        body["id"]
            .as_str()
            .and_then(|id| Uuid::parse_str(id).ok())
            .unwrap_or_else(|| panic!("id is not a UUID string: {body}"))
    }

    /// Asserts 201 and returns the payment id.
    fn created(&self) -> Uuid {
        self.assert_status(StatusCode::CREATED);
        self.payment_id()
    }

    /// The first error message.
    fn error_message(&self) -> String {
        self.error().errors[0].message.clone()
    }
}

/// A payment as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentRow {
    pub id: Uuid,
    pub order_id: Uuid,
    pub state: String,
    pub attempt: i32,
    pub provider: String,
    pub amount_cents: i64,
    pub currency: String,
    pub charge_id: Option<String>,
    pub failure_message: Option<String>,
}

/// A replica order as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OrderRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub price_cents: i64,
    pub status: String,
    pub version: i64,
}

/// An `order.created` envelope (version 0, status created), as the orders service sends it.
pub fn order_created(id: Uuid, user_id: Uuid, price_cents: i64) -> Envelope<OrderCreated> {
    Envelope::new(OrderCreated {
        id,
        version: 0,
        status: OrderStatus::Created,
        user_id,
        expires_at: OffsetDateTime::now_utc() + time::Duration::minutes(15),
        ticket: OrderTicket {
            id: Uuid::now_v7(),
            price: Cents(price_cents),
        },
    })
}

/// An `order.cancelled` envelope carrying version `version`.
pub fn order_cancelled(id: Uuid, version: i64) -> Envelope<OrderCancelled> {
    Envelope::new(OrderCancelled {
        id,
        version,
        ticket: TicketRef { id: Uuid::now_v7() },
    })
}

/// The `Stripe-Signature` header Stripe would send for `body` at `timestamp`, computed here
/// independently of the service's own code.
pub fn stripe_signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Now, in unix seconds.
pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// A `payment_intent.*` event body as Stripe sends it (pretty-printed, as Stripe does: the
/// signature covers these exact bytes).
pub fn intent_event(
    event_id: &str,
    kind: &str,
    intent_id: &str,
    order_id: Uuid,
    amount: i64,
) -> String {
    serde_json::to_string_pretty(&json!({
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "livemode": false,
        "type": kind,
        "data": {"object": {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": if kind == "payment_intent.succeeded" { amount } else { 0 },
            "currency": "usd",
            "status": if kind == "payment_intent.succeeded" { "succeeded" } else { "requires_payment_method" },
            "metadata": {"order_id": order_id.to_string()},
            "last_payment_error": if kind == "payment_intent.payment_failed" {
                json!({"type": "card_error", "message": "Your card has insufficient funds."})
            } else { Value::Null },
        }},
    }))
    .expect("event JSON")
}

impl TestApp {
    /// The development provider the app charges through; panics for a Stripe app.
    pub fn dev(&self) -> &DevProvider {
        match &self.payments.provider {
            Provider::Dev(dev) => dev,
            Provider::Stripe(_) => panic!("this app charges through Stripe"),
        }
    }

    /// `POST /api/payments` with a JSON body.
    pub async fn post_payment(&self, user: Option<&User>, body: &Value) -> Reply {
        self.send(
            Method::POST,
            "/api/payments",
            user,
            Some((Some("application/json"), body.to_string())),
        )
        .await
    }

    /// `POST /api/payments {orderId, token}`.
    pub async fn pay(&self, user: &User, order_id: Uuid, token: &str) -> Reply {
        self.post_payment(Some(user), &json!({"orderId": order_id, "token": token}))
            .await
    }

    /// `POST /api/payments/webhook` with a raw body and, if given, a `Stripe-Signature`.
    pub async fn post_webhook(&self, body: &str, signature: Option<&str>) -> Reply {
        let mut request = self
            .client
            .post(self.url("/api/payments/webhook"))
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header("Stripe-Signature", signature);
        }
        Reply::read(request.send().await.expect("request")).await
    }

    /// Posts a webhook body signed now with the app's secret.
    pub async fn post_signed_webhook(&self, body: &str) -> Reply {
        self.post_webhook(body, Some(&stripe_signature(WEBHOOK_SECRET, now(), body)))
            .await
    }

    // --- the database -------------------------------------------------------------------

    /// Puts a live order straight into the replica (version 0), for tests not about the
    /// listeners.
    pub async fn insert_order(&self, user: &User, price_cents: i64) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO orders (id, user_id, price_cents, status, version)
             VALUES ($1, $2, $3, 'created', 0)",
        )
        .bind(id)
        .bind(user.id)
        .bind(price_cents)
        .execute(&self.pool)
        .await
        .expect("insert replica order");
        id
    }

    pub async fn order_row(&self, id: Uuid) -> Option<OrderRow> {
        sqlx::query_as("SELECT id, user_id, price_cents, status, version FROM orders WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .expect("read replica order")
    }

    /// `(status, version)` of a replica order; panics if there is none.
    pub async fn order_state(&self, id: Uuid) -> (String, i64) {
        let row = self.order_row(id).await.expect("order in the replica");
        (row.status, row.version)
    }

    pub async fn payment_row(&self, order_id: Uuid) -> Option<PaymentRow> {
        sqlx::query_as(
            "SELECT id, order_id, state, attempt, provider, amount_cents, currency, charge_id,
                    failure_message
             FROM payments WHERE order_id = $1",
        )
        .bind(order_id)
        .fetch_optional(&self.pool)
        .await
        .expect("read payment")
    }

    pub async fn payment_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM payments")
            .fetch_one(&self.pool)
            .await
            .expect("count payments")
    }

    /// Events of one subject written to the outbox (sent or not).
    pub async fn outbox_count(&self, subject: Subject) -> i64 {
        api::outbox_count(&self.pool, subject).await
    }

    /// `(charge_id, order_id, reason)` of every unmatched charge.
    pub async fn unmatched_charges(&self) -> Vec<(String, Option<Uuid>, String)> {
        sqlx::query_as(
            "SELECT charge_id, order_id, reason FROM unmatched_charges ORDER BY recorded_at",
        )
        .fetch_all(&self.pool)
        .await
        .expect("read unmatched charges")
    }

    /// Waits until the replica's order satisfies `done`; panics with the last row otherwise.
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

    /// Announces an order the way the orders service does and waits until the replica knows
    /// it.
    pub async fn seed_order(&self, user: &User, price_cents: i64) -> Uuid {
        let id = Uuid::now_v7();
        self.publish(&order_created(id, user.id, price_cents)).await;
        self.wait_for_order(id, "learnt", |_| true).await;
        id
    }

    // --- the bus ------------------------------------------------------------------------

    /// Publishes an event on the test's stream and waits for JetStream's ack. Deliberately
    /// without `Nats-Msg-Id`: publishing the same envelope twice really delivers it twice, as
    /// a redelivery after a lost ack would.
    pub async fn publish<T: Event>(&self, envelope: &Envelope<T>) {
        api::publish(&self.bus, envelope).await;
    }

    /// Every event of type `T` in the stream, oldest first.
    pub async fn published<T: Event>(&self) -> Vec<Envelope<T>> {
        api::published(&self.bus).await
    }

    /// `payment.created` events about one order, by their `data` as JSON, oldest first.
    pub async fn payment_events(&self, order_id: Uuid) -> Vec<Value> {
        self.published::<ticketing_events::PaymentCreated>()
            .await
            .into_iter()
            .map(|event| serde_json::to_value(event.data).expect("event data"))
            .filter(|data| data["orderId"] == json!(order_id))
            .collect()
    }

    /// Waits until `expected` `payment.created` events about one order are in the stream and
    /// returns their `data`; panics if fewer arrive in time.
    pub async fn wait_for_payment_events(&self, order_id: Uuid, expected: usize) -> Vec<Value> {
        testing::eventually(WAIT, || async move {
            let events = self.payment_events(order_id).await;
            (events.len() >= expected).then_some(events)
        })
        .await
        .unwrap_or_else(|| panic!("fewer than {expected} payment.created events for {order_id}"))
    }

    /// Whether payments' consumer of `subject` has handled every message published on it.
    pub async fn consumer_drained(&self, subject: Subject) -> bool {
        api::consumer_drained(&self.bus, ticketing_payments::NAME, subject).await
    }

    /// Waits until a listener has seen a message of `subject` more than once: an early event
    /// waiting for its predecessor.
    pub async fn wait_until_redelivered(&self, subject: Subject) {
        let parked = testing::eventually(WAIT, || async {
            let mut consumer = self
                .bus
                .consumer(ticketing_payments::NAME, subject)
                .await
                .ok()?;
            let info = consumer.info().await.ok()?;
            (info.num_redelivered >= 1).then_some(())
        })
        .await;
        assert!(parked.is_some(), "no {subject} event was ever retried");
    }

    /// Waits until both listeners are idle and every outbox row has been published: nothing
    /// the test caused is still under way.
    pub async fn settle(&self) {
        for subject in [Subject::OrderCreated, Subject::OrderCancelled] {
            let drained = testing::eventually(WAIT, || async move {
                self.consumer_drained(subject).await.then_some(())
            })
            .await;
            assert!(drained.is_some(), "{subject} events never all handled");
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
