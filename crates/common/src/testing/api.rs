//! Talking to a service under test the way its clients do, and looking at its events.
//!
//! [`User`] is a signed-in user (a session cookie signed with the test keys, no auth service
//! needed); [`send`] makes a request and reads the whole [`Reply`], whose methods check the
//! contract's shapes (the error body above all). [`publish`], [`published`] and
//! [`wait_until_handled`] play and observe the rest of the system on the test's stream.

use std::time::Duration;

use reqwest::{
    Method, StatusCode,
    header::{CONTENT_TYPE, COOKIE, HeaderMap},
};
use serde_json::Value;
use ticketing_events::{Envelope, Event, Subject};
use uuid::Uuid;

use super::eventually;
use crate::{
    bus::Bus,
    error::ErrorBody,
    session::{COOKIE_NAME, SessionKeys},
};

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub cookie: String,
}

impl User {
    /// A new user with a valid session signed by `keys`.
    pub fn signed_in(keys: &SessionKeys) -> User {
        let id = Uuid::now_v7();
        User::with_email(keys, id, &format!("{}@example.com", id.simple()))
    }

    /// A new session of the operator [`super::OPERATOR_EMAIL`] names (spelled in capitals:
    /// operators are matched case-insensitively).
    pub fn operator(keys: &SessionKeys) -> User {
        User::with_email(keys, Uuid::now_v7(), &super::OPERATOR_EMAIL.to_uppercase())
    }

    fn with_email(keys: &SessionKeys, id: Uuid, email: &str) -> User {
        let token = keys.issue(id, email).expect("session token");
        User {
            id,
            cookie: format!("{COOKIE_NAME}={token}"),
        }
    }
}

/// What the server answered, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("response body");
        Reply {
            status,
            headers,
            text,
        }
    }

    /// The body as JSON; panics (showing the body) if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?} (status {})",
                self.text, self.status
            )
        })
    }

    pub fn assert_status(&self, expected: StatusCode) -> &Self {
        assert_eq!(self.status, expected, "body: {}", self.text);
        self
    }

    /// The contract's error body: JSON, a non-empty list, every message non-empty.
    pub fn error(&self) -> ErrorBody {
        let content_type = self
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "error content type {content_type:?}: {}",
            self.text
        );
        let body: ErrorBody = serde_json::from_str(&self.text).unwrap_or_else(|e| {
            panic!(
                "not the contract's error body ({e}): {:?} (status {})",
                self.text, self.status
            )
        });
        assert!(!body.errors.is_empty(), "empty error list: {}", self.text);
        for item in &body.errors {
            assert!(
                !item.message.trim().is_empty(),
                "empty message: {}",
                self.text
            );
        }
        body
    }

    /// The fields an error body names, sorted and deduplicated (asserting it is the
    /// contract's error body).
    pub fn error_fields(&self) -> Vec<String> {
        let mut fields: Vec<String> = self
            .error()
            .errors
            .into_iter()
            .filter_map(|item| item.field)
            .collect();
        fields.sort();
        fields.dedup();
        fields
    }

    /// Asserts a 400 whose error body names exactly `fields`.
    pub fn assert_invalid(&self, fields: &[&str]) {
        self.assert_status(StatusCode::BAD_REQUEST);
        assert_eq!(self.error_fields(), fields, "body: {}", self.text);
    }

    /// Asserts `status` with the contract's error body.
    pub fn assert_error(&self, status: StatusCode) {
        self.assert_status(status);
        self.error();
    }
}

/// A client for one server under test: its address, an HTTP client, and the keys sessions
/// are signed with. Service test apps deref to it for `url`, `user`, `send` and `get`.
#[derive(Clone)]
pub struct ApiClient {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub base: String,
    pub client: reqwest::Client,
    pub keys: std::sync::Arc<SessionKeys>,
}

impl ApiClient {
    /// A client with a 30 s request timeout.
    pub fn new(base: String, keys: std::sync::Arc<SessionKeys>) -> ApiClient {
        ApiClient::with_timeout(base, keys, Duration::from_secs(30))
    }

    pub fn with_timeout(
        base: String,
        keys: std::sync::Arc<SessionKeys>,
        timeout: Duration,
    ) -> ApiClient {
        let client = client_builder(timeout).build().expect("HTTP client");
        ApiClient {
            base: base.trim_end_matches('/').to_owned(),
            client,
            keys,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A new user with a valid session.
    pub fn user(&self) -> User {
        User::signed_in(&self.keys)
    }

    /// A signed-in operator.
    pub fn operator(&self) -> User {
        User::operator(&self.keys)
    }

    /// Sends a request, with the user's session and a raw body with a content type if given.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        user: Option<&User>,
        body: Option<(Option<&str>, String)>,
    ) -> Reply {
        send(&self.client, method, self.url(path), user, body).await
    }

    /// Sends `body` as JSON, with the user's session if given.
    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        user: Option<&User>,
        body: &Value,
    ) -> Reply {
        let body = (Some("application/json"), body.to_string());
        self.send(method, path, user, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, None).await
    }
}

/// The builder of every test client: no proxy, requests give up after `timeout`.
pub fn client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder().no_proxy().timeout(timeout)
}

/// Sends a request with the user's session and, if given, a raw body with its content type.
pub async fn send(
    client: &reqwest::Client,
    method: Method,
    url: String,
    user: Option<&User>,
    body: Option<(Option<&str>, String)>,
) -> Reply {
    let mut request = client.request(method, url);
    if let Some(user) = user {
        request = request.header(COOKIE, &user.cookie);
    }
    if let Some((content_type, body)) = body {
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        request = request.body(body);
    }
    Reply::read(request.send().await.expect("request")).await
}

/// Publishes an event on the test's stream and waits for JetStream's ack. Deliberately
/// without `Nats-Msg-Id`: publishing the same envelope twice then really delivers it twice,
/// as a redelivery after a lost ack would.
pub async fn publish<T: Event>(bus: &Bus, envelope: &Envelope<T>) {
    let payload = serde_json::to_vec(envelope).expect("encode event");
    bus.jetstream()
        .publish(bus.subject(T::SUBJECT), payload.into())
        .await
        .expect("publish")
        .await
        .expect("JetStream ack");
}

/// Every event of type `T` in the stream, oldest first.
pub async fn published<T: Event>(bus: &Bus) -> Vec<Envelope<T>> {
    events_on(bus, &[T::SUBJECT])
        .await
        .into_iter()
        .map(|(subject, envelope)| {
            serde_json::from_value(envelope)
                .unwrap_or_else(|e| panic!("undecodable {} ({e})", subject.as_str()))
        })
        .collect()
}

/// Every event in the bus's stream on one of `subjects`, as (subject, envelope JSON), oldest
/// first: one ordered consumer reads the stream once, however many events it holds. A
/// clustered stream that is electing a leader may not answer at once: tried for 30 s.
pub async fn events_on(bus: &Bus, subjects: &[Subject]) -> Vec<(Subject, Value)> {
    eventually(Duration::from_secs(30), || read_events(bus, subjects))
        .await
        .expect("the stream's events (NATS answered no read within 30 s)")
}

/// One try of [`events_on`]; `None` when NATS did not answer.
async fn read_events(bus: &Bus, subjects: &[Subject]) -> Option<Vec<(Subject, Value)>> {
    use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
    use futures::StreamExt;
    let wanted: Vec<(String, Subject)> = subjects.iter().map(|s| (bus.subject(*s), *s)).collect();
    let stream = bus.jetstream().get_stream(bus.stream_name()).await.ok()?;
    let mut consumer = stream
        .create_consumer(OrderedConfig {
            deliver_policy: DeliverPolicy::All,
            ..OrderedConfig::default()
        })
        .await
        .ok()?;
    let mut events = Vec::new();
    if consumer.info().await.ok()?.num_pending == 0 {
        return Some(events);
    }
    let mut messages = consumer.messages().await.ok()?;
    while let Some(message) = messages.next().await {
        let message = message.ok()?;
        if let Some((_, subject)) = wanted
            .iter()
            .find(|(full, _)| *full == message.subject.as_str())
        {
            let envelope = serde_json::from_slice(&message.payload).expect("an event envelope");
            events.push((*subject, envelope));
        }
        if message.info().map_or(0, |i| i.pending) == 0 {
            break;
        }
    }
    Some(events)
}

/// Whether `service`'s consumer of `subject` has handled (acked or given up on) every message
/// published on it so far.
pub async fn consumer_drained(bus: &Bus, service: &str, subject: Subject) -> bool {
    let Ok(mut consumer) = bus.consumer(service, subject).await else {
        return false;
    };
    consumer
        .info()
        .await
        .is_ok_and(|info| info.num_pending == 0 && info.num_ack_pending == 0)
}

/// Waits until `service`'s listener of `subject` has handled every message published on it.
pub async fn wait_until_handled(bus: &Bus, service: &str, subject: Subject, wait: Duration) {
    let drained = eventually(wait, || async move {
        consumer_drained(bus, service, subject).await.then_some(())
    })
    .await;
    assert!(
        drained.is_some(),
        "{} events never all handled by {service}",
        subject.as_str()
    );
}

/// How many events of `subject` a service wrote to its outbox (sent or not).
pub async fn outbox_count(pool: &sqlx::PgPool, subject: Subject) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE subject = $1")
        .bind(subject.as_str())
        .fetch_one(pool)
        .await
        .expect("count outbox rows")
}

/// Waits until every unsent outbox row of `pool`'s database has been published.
pub async fn wait_until_outbox_empty(pool: &sqlx::PgPool, wait: Duration) {
    let sent = eventually(wait, || async move {
        let unsent: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            .fetch_one(pool)
            .await
            .ok()?;
        (unsent == 0).then_some(())
    })
    .await;
    assert!(sent.is_some(), "the outbox was never emptied");
}
