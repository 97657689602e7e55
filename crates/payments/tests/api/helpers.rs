//! The payments service on a random port, over a database and a stream of its own, and typed
//! ways to talk to it and to look behind it.
//!
//! Every [`TestApp`] has its own namespace, hence its own database (dropped with it) and its
//! own JetStream stream and subjects (deleted with it). The server runs the component's
//! tasks: the outbox relay, the two order listeners and the reconciler (whose interval tests
//! leave at an hour: they call `flows::reconcile_once` when they are about it). Tests play
//! the orders service by publishing its events straight to the stream, play Stripe's webhook by signing events with
//! [`WEBHOOK_SECRET`], and read back what payments published from the same stream. The
//! development provider is shared with the test ([`TestApp::dev`]) so tests can count its
//! calls and charges.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use reqwest::{Method, StatusCode, header::CONTENT_TYPE};
use serde_json::{Value, json};
use sha2::Sha256;
pub use ticketing_common::testing::{
    api::{Reply, User},
    app::POOL_SIZE,
};
use ticketing_common::{
    Secret,
    testing::{
        self, api,
        app::{self, Harness, Setup},
    },
};
use ticketing_events::{
    Cents, Envelope, OrderCancelled, OrderCreated, OrderStatus, OrderTicket, PaymentCreated,
    PaymentRefunded, TicketRef,
};
use ticketing_payments::{
    MIGRATOR, NAME, Payments,
    provider::{DevProvider, Provider, StripeClient},
};
use time::OffsetDateTime;
use uuid::Uuid;

/// The webhook signing secret every test app is configured with.
pub const WEBHOOK_SECRET: &str = "whsec_test_0123456789abcdef";

/// A running payments service and what a test needs to poke at it; derefs to the
/// [`Harness`] (pool, bus, waits) and through it to the `ApiClient` (address, client, users).
pub struct TestApp {
    /// The service as the server runs it.
    pub payments: Payments,
    app: Harness,
}

impl std::ops::Deref for TestApp {
    type Target = Harness;

    fn deref(&self) -> &Harness {
        &self.app
    }
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
    let backing = Setup::new(NAME, &MIGRATOR).create().await;
    let payments = configure(Payments {
        webhook_secret: Some(Secret::new(WEBHOOK_SECRET.into())),
        // Tests that are about the reconciler run a round themselves
        // (`flows::reconcile_once`); a background round must not race the others.
        reconcile_interval: Duration::from_secs(3600),
        ..Payments::new(backing.pool.clone())
    });
    let component = ticketing_payments::component(payments.clone(), backing.bus());
    // Generous: some tests make the provider slow or time out on purpose.
    let client = api::client_builder(Duration::from_secs(60));
    let app = backing
        .serve(vec![component], testing::session_keys())
        .await
        .with_client(client.build().expect("HTTP client"));
    TestApp { payments, app }
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

/// An `order.completed` envelope carrying version `version`.
pub fn order_completed(id: Uuid, version: i64) -> Envelope<ticketing_events::OrderCompleted> {
    Envelope::new(ticketing_events::OrderCompleted {
        id,
        version,
        ticket: TicketRef { id: Uuid::now_v7() },
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
        self.send_json(Method::POST, "/api/payments", user, body)
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
        let what = format!("order never {what}");
        app::wait_for(&what, || self.order_row(id), done).await
    }

    /// Waits until the order's payment satisfies `done`; panics with the last row otherwise.
    pub async fn wait_for_payment(
        &self,
        order_id: Uuid,
        what: &str,
        done: impl Fn(&PaymentRow) -> bool,
    ) -> PaymentRow {
        let what = format!("payment never {what}");
        app::wait_for(&what, || self.payment_row(order_id), done).await
    }

    /// `(state, reason, attempt, failure_message)` of the order's refund, if any.
    pub async fn refund_row(
        &self,
        order_id: Uuid,
    ) -> Option<(String, String, i32, Option<String>)> {
        sqlx::query_as(
            "SELECT state, reason, attempt, failure_message FROM refunds WHERE order_id = $1",
        )
        .bind(order_id)
        .fetch_optional(&self.pool)
        .await
        .expect("read refund")
    }

    /// `POST /api/payments/refunds {orderId}`.
    pub async fn refund(&self, user: Option<&User>, order_id: Uuid) -> Reply {
        self.send_json(
            Method::POST,
            "/api/payments/refunds",
            user,
            &json!({"orderId": order_id}),
        )
        .await
    }

    /// `GET /api/payments?orderId=…`.
    pub async fn payments_of(&self, user: Option<&User>, order_id: &str) -> Reply {
        self.send(
            Method::GET,
            &format!("/api/payments?orderId={order_id}"),
            user,
            None,
        )
        .await
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

    /// `payment.created` events about one order, by their `data` as JSON, oldest first.
    pub async fn payment_events(&self, order_id: Uuid) -> Vec<Value> {
        self.events_about::<PaymentCreated>("orderId", order_id)
            .await
    }

    /// Waits until `expected` `payment.created` events about one order are in the stream and
    /// returns their `data`; panics if fewer arrive in time.
    pub async fn wait_for_payment_events(&self, order_id: Uuid, expected: usize) -> Vec<Value> {
        self.wait_for_events_about::<PaymentCreated>("orderId", order_id, expected)
            .await
    }

    /// Waits until `expected` `payment.refunded` events about one order are in the stream
    /// and returns their `data`.
    pub async fn wait_for_refund_events(&self, order_id: Uuid, expected: usize) -> Vec<Value> {
        self.wait_for_events_about::<PaymentRefunded>("orderId", order_id, expected)
            .await
    }
}
