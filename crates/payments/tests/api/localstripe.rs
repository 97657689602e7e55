//! The Stripe path end to end against localstripe, a stateful Stripe emulator (PyPI), run by
//! `scripts/localstripe.sh` with the adaptations `scripts/localstripe.py` lists: paying,
//! a decline, an idempotent retry, a refund (once), and webhooks signed by the emulator and
//! verified by the service. The wiremock tests (`stripe_api`, `stripe_client`) stay for what
//! an emulator cannot do on demand (outages, timeouts, odd answers).

use std::{process::Stdio, time::Duration};

use reqwest::StatusCode;
use serde_json::{Value, json};
use ticketing_payments::{
    Payments,
    domain::idempotency_key,
    provider::{ChargeRequest, PaymentProvider, Provider, StripeClient},
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};
use uuid::Uuid;

use crate::helpers::PaymentReply as _;
use crate::helpers::{TestApp, WEBHOOK_SECRET, spawn_app_with, stripe_key};

/// A localstripe server on a free port of its own, killed when dropped.
struct LocalStripe {
    base: String,
    http: reqwest::Client,
    _child: Child,
}

impl LocalStripe {
    async fn start() -> LocalStripe {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/localstripe.sh");
        let mut child = Command::new("bash")
            .arg(script)
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start scripts/localstripe.sh");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = lines.next_line().await.expect("read localstripe") {
                if line.contains("listening on") {
                    return;
                }
            }
            panic!("localstripe stopped before listening (is python3 with pip available?)");
        });
        ready.await.expect("localstripe did not start in time");
        LocalStripe {
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            _child: child,
        }
    }

    /// Sends Stripe events to `url`, signed with `secret`.
    async fn register_webhook(&self, url: &str, secret: &str) {
        let reply = self
            .http
            .post(format!("{}/_config/webhooks/payments", self.base))
            .form(&[("url", url), ("secret", secret)])
            .send()
            .await
            .expect("register the webhook");
        assert!(reply.status().is_success(), "{}", reply.status());
    }

    /// A GET on the emulator's API with the test key.
    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(stripe_key().expose())
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON")
    }

    /// A PaymentMethod for a test card number, the way a browser's Stripe.js makes one.
    async fn payment_method(&self, number: &str) -> String {
        let created: Value = self
            .http
            .post(format!("{}/v1/payment_methods", self.base))
            .bearer_auth(stripe_key().expose())
            .form(&[
                ("type", "card"),
                ("card[number]", number),
                ("card[exp_month]", "12"),
                ("card[exp_year]", "2034"),
                ("card[cvc]", "123"),
            ])
            .send()
            .await
            .expect("create a payment method")
            .json()
            .await
            .expect("JSON");
        created["id"].as_str().expect("pm id").to_owned()
    }

    /// The intents the emulator holds for an order (by our metadata).
    async fn intents_of(&self, order: Uuid) -> Vec<Value> {
        let query = format!("metadata['order_id']:'{order}'");
        let url = reqwest::Url::parse_with_params(
            &format!("{}/v1/payment_intents/search", self.base),
            [("query", query.as_str())],
        )
        .unwrap();
        let found: Value = self
            .http
            .get(url)
            .bearer_auth(stripe_key().expose())
            .send()
            .await
            .expect("search")
            .json()
            .await
            .expect("JSON");
        found["data"].as_array().cloned().unwrap_or_default()
    }

    fn client(&self) -> StripeClient {
        StripeClient::with_timeout(stripe_key(), &self.base, Duration::from_secs(10))
            .expect("client")
    }
}

/// The app charging through localstripe, which sends its webhooks to the app.
async fn spawn_app_on(stripe: &LocalStripe) -> TestApp {
    let client = stripe.client();
    let app = spawn_app_with(|payments| Payments {
        provider: Provider::Stripe(client),
        ..payments
    })
    .await;
    stripe
        .register_webhook(&app.url("/api/payments/webhook"), WEBHOOK_SECRET)
        .await;
    app
}

#[tokio::test]
async fn paying_declining_retrying_refunding_and_webhooks_against_localstripe() {
    let stripe = LocalStripe::start().await;
    let app = spawn_app_on(&stripe).await;
    let buyer = app.user();

    // Pay: the exact cents, once, with the card on the receipt.
    let order = app.seed_order(&buyer, 2599).await;
    let payment = app.pay(&buyer, order, "tok_visa").await.created();
    let row = app.payment_row(order).await.unwrap();
    let intent_id = row.charge_id.clone().expect("the intent");
    let intent = stripe
        .get(&format!("/v1/payment_intents/{intent_id}"))
        .await;
    assert_eq!(
        (intent["amount"].clone(), intent["status"].clone()),
        (json!(2599), json!("succeeded"))
    );
    assert_eq!(intent["metadata"]["order_id"], json!(order));
    let receipt = app.payments_of(Some(&buyer), &order.to_string()).await;
    assert_eq!(receipt.json()[0]["cardBrand"], "visa");
    assert_eq!(receipt.json()[0]["cardLast4"], "4242");
    assert_eq!(app.order_state(order).await.0, "complete");

    // A decline (localstripe declines 4000000000000341 on charge): 402, and the order stays
    // payable with another card.
    let declined_order = app.seed_order(&buyer, 1000).await;
    let bad_card = stripe.payment_method("4000000000000341").await;
    let declined = app.pay(&buyer, declined_order, &bad_card).await;
    declined.assert_error(StatusCode::PAYMENT_REQUIRED);
    assert!(
        declined.error_message().contains("declined"),
        "{}",
        declined.text
    );
    app.pay(&buyer, declined_order, "pm_card_visa")
        .await
        .created();

    // An idempotent retry: the same attempt sent again finds the same intent, one charge.
    let retried = app.payment_row(declined_order).await.unwrap();
    let request = ChargeRequest {
        idempotency_key: idempotency_key(declined_order, retried.attempt),
        order_id: declined_order,
        amount_cents: 1000,
        currency: "usd".into(),
        token: "pm_card_visa".into(),
    };
    let again = stripe.client().charge(&request).await.expect("replayed");
    assert_eq!(Some(again.id), retried.charge_id);
    let intents = stripe.intents_of(declined_order).await;
    let succeeded = intents
        .iter()
        .filter(|i| i["status"] == "succeeded")
        .count();
    assert_eq!(succeeded, 1, "{intents:?}");

    // A refund, once; twice is 409 and the emulator holds one refund.
    let operator = app.operator();
    let refunded = app.refund(Some(&operator), order).await;
    refunded.assert_status(StatusCode::CREATED);
    assert_eq!(refunded.json()["amount"], json!(25.99));
    app.refund(Some(&operator), order)
        .await
        .assert_error(StatusCode::CONFLICT);
    let refunds = stripe.get("/v1/refunds").await;
    let of_intent: Vec<&Value> = refunds["data"]
        .as_array()
        .expect("refund list")
        .iter()
        .filter(|r| r["payment_intent"] == json!(intent_id))
        .collect();
    assert_eq!(of_intent.len(), 1, "{refunds}");
    assert_eq!(app.payment_row(order).await.unwrap().state, "refunded");
    assert_eq!(
        app.wait_for_refund_events(order, 1).await[0]["refundId"],
        of_intent[0]["id"]
    );
    assert_eq!(payment, row.id);
}

#[tokio::test]
async fn a_charge_whose_answer_was_lost_is_recorded_by_the_emulators_signed_webhook() {
    let stripe = LocalStripe::start().await;
    let app = spawn_app_on(&stripe).await;
    let buyer = app.user();
    let order = app.seed_order(&buyer, 1500).await;
    // A request recorded its attempt and charged, then died before writing the outcome.
    sqlx::query(
        "INSERT INTO payments (id, order_id, user_id, state, attempt, provider, amount_cents,
                               currency, token)
         VALUES ($1, $2, $3, 'pending', 1, 'stripe', 1500, 'usd', 'pm_card_visa')",
    )
    .bind(Uuid::now_v7())
    .bind(order)
    .bind(buyer.id)
    .execute(&app.pool)
    .await
    .unwrap();
    let request = ChargeRequest {
        idempotency_key: idempotency_key(order, 1),
        order_id: order,
        amount_cents: 1500,
        currency: "usd".into(),
        token: "pm_card_visa".into(),
    };
    let charge = stripe.client().charge(&request).await.expect("charged");

    // localstripe signs payment_intent.succeeded with the secret; the service verifies it
    // and records the charge.
    let row = app
        .wait_for_payment(order, "recorded by the webhook", |row| {
            row.state == "succeeded"
        })
        .await;
    assert_eq!(row.charge_id, Some(charge.id));
    assert_eq!(app.order_state(order).await.0, "complete");
    assert_eq!(app.wait_for_payment_events(order, 1).await.len(), 1);
}
