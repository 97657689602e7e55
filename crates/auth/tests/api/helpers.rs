//! The auth service on a random port over a fresh database of its own, and typed ways to talk
//! to it.
//!
//! Every [`TestApp`] has its own namespace, hence its own database (dropped with it), its own
//! rate limiter and its own cookie-keeping client; tests never share state.

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
    time::Duration,
};

use ipnet::IpNet;
use reqwest::{
    Method, StatusCode,
    header::{COOKIE, SET_COOKIE},
};
use serde::Deserialize;
use serde_json::{Value, json};
use ticketing_auth::{Limits, MIGRATOR, NAME, store::users::UserRow};
pub use ticketing_common::testing::{api::Reply, app::POOL_SIZE};
use ticketing_common::{
    forwarded::Proxies,
    session::{COOKIE_NAME, Revocations, SessionKeys},
    settings::Namespace,
    testing::{
        self, RedisKeys, api,
        app::{Harness, Setup},
    },
};
use uuid::Uuid;

/// The secret behind [`testing::session_keys`]; tests use it to sign tokens the app accepts
/// (expired ones, say). `a_token_signed_with_the_test_key_is_accepted` in `session.rs` checks
/// that the two agree.
pub const TEST_KEY: &[u8] = b"test-key-test-key-test-key-test-key!";

/// A session lasts one day.
pub const SESSION_SECONDS: i64 = 24 * 60 * 60;

/// A running auth service and what a test needs to poke at it; derefs to the [`Harness`]
/// (`pool`) and through it to the `ApiClient`: `keys`, the ones the app signs and verifies
/// sessions with, and `client`, one with its own cookie jar, like a browser.
pub struct TestApp {
    app: Harness,
    /// Removes the app's Redis keys (revoked sessions, sign-in counts) with it.
    _redis_keys: RedisKeys,
    /// The namespace of its Redis keys.
    pub namespace: Namespace,
    pub redis_url: String,
}

impl std::ops::Deref for TestApp {
    type Target = Harness;

    fn deref(&self) -> &Harness {
        &self.app
    }
}

/// How to build a test app.
pub struct Options {
    /// Sign-in and sign-up attempts per client address per minute; 0: no limits at all.
    pub per_minute: u32,
    pub keys: SessionKeys,
    /// `TRUSTED_PROXIES`.
    pub trusted_proxies: Vec<IpNet>,
    /// The queue Redis (revoked sessions, failed sign-ins per account).
    pub redis_url: String,
    /// Whose revoked sessions and sign-in counts it shares: another app's namespace makes it
    /// a second replica of that app as far as Redis goes (its database is its own).
    pub redis_namespace: Option<Namespace>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            per_minute: 0,
            keys: SessionKeys::new(TEST_KEY, false).expect("test key"),
            trusted_proxies: Vec::new(),
            redis_url: testing::redis_url(),
            redis_namespace: None,
        }
    }
}

/// The app with test keys (`Secure` off) and no rate limit.
pub async fn spawn_app() -> TestApp {
    spawn(Options::default()).await
}

/// The app allowing `per_minute` sign-in and sign-up attempts per client address.
pub async fn spawn_app_with_rate_limit(per_minute: u32) -> TestApp {
    spawn(Options {
        per_minute,
        ..Options::default()
    })
    .await
}

/// The app with given session keys and no rate limit.
pub async fn spawn_app_with_keys(keys: SessionKeys) -> TestApp {
    spawn(Options {
        keys,
        ..Options::default()
    })
    .await
}

/// The app as `options` say, with revoked sessions and failed sign-ins kept in Redis under
/// the test's own namespace.
pub async fn spawn(options: Options) -> TestApp {
    let backing = Setup::new(NAME, &MIGRATOR).without_events().create().await;
    let namespace = options
        .redis_namespace
        .unwrap_or_else(|| backing.namespace.clone());
    let redis_keys = RedisKeys::of(&options.redis_url, &namespace);
    let revocations = Revocations::open(&options.redis_url, &namespace).expect("the queue Redis");
    let keys = Arc::new(options.keys.with_revocations(Arc::new(revocations)));
    let proxies = Proxies::new(options.trusted_proxies);
    let limits =
        Limits::new(options.per_minute, proxies, &options.redis_url, &namespace).expect("limits");
    let component = ticketing_auth::component(backing.pool.clone(), keys.clone(), limits);
    let app = backing
        .serve(vec![component], keys)
        .await
        .with_client(client());
    TestApp {
        app,
        _redis_keys: redis_keys,
        namespace,
        redis_url: options.redis_url,
    }
}

/// A client with an empty cookie jar.
pub fn client() -> reqwest::Client {
    client_builder()
        .cookie_store(true)
        .build()
        .expect("HTTP client")
}

/// A client with an empty cookie jar whose connections come from another loopback address.
pub fn client_from(address: Ipv4Addr) -> reqwest::Client {
    client_builder()
        .cookie_store(true)
        .local_address(IpAddr::V4(address))
        .build()
        .expect("HTTP client")
}

fn client_builder() -> reqwest::ClientBuilder {
    api::client_builder(Duration::from_secs(30))
}

/// Reading auth's answers out of a [`Reply`].
pub trait AuthReply {
    fn user(&self) -> UserBody;
    fn session_cookie(&self) -> Option<SetCookie>;
}

impl AuthReply for Reply {
    /// A `{id, email}` body, and nothing else.
    fn user(&self) -> UserBody {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not a {{id, email}} body ({e}): {}", self.text))
    }

    /// The `Set-Cookie` of the session cookie, if the answer has one.
    fn session_cookie(&self) -> Option<SetCookie> {
        let mut found = self
            .headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .map(SetCookie::parse)
            .filter(|cookie| cookie.name == COOKIE_NAME);
        let cookie = found.next();
        assert!(
            found.next().is_none(),
            "more than one session cookie set: {:?}",
            self.headers
        );
        cookie
    }
}

/// A `{id, email}` answer. Unknown fields fail the test: the contract says exactly these two.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserBody {
    pub id: Uuid,
    pub email: String,
}

/// The `currentUser` object: exactly `{id, email, iat, exp}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionClaims {
    pub id: Uuid,
    pub email: String,
    pub iat: i64,
    pub exp: i64,
}

/// One `Set-Cookie` header, split up.
#[derive(Debug)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    /// `HttpOnly`, `Path=/`, …, as sent.
    pub attributes: Vec<String>,
    pub raw: String,
}

impl SetCookie {
    fn parse(raw: &str) -> SetCookie {
        let mut parts = raw.split(';').map(str::trim);
        let (name, value) = parts
            .next()
            .and_then(|pair| pair.split_once('='))
            .unwrap_or((raw, ""));
        SetCookie {
            name: name.to_owned(),
            value: value.to_owned(),
            attributes: parts.filter(|p| !p.is_empty()).map(str::to_owned).collect(),
            raw: raw.to_owned(),
        }
    }

    /// Whether a flag (`HttpOnly`) or a `name=value` attribute is present, ignoring case.
    pub fn has(&self, attribute: &str) -> bool {
        self.attributes
            .iter()
            .any(|a| a.eq_ignore_ascii_case(attribute))
    }

    /// The value of a `name=value` attribute.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find_map(|a| {
            let (key, value) = a.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }

    /// Asserts the flags the contract asks of every session cookie.
    pub fn assert_contract_flags(&self) {
        for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(self.has(flag), "session cookie lacks {flag}: {}", self.raw);
        }
    }
}

impl TestApp {
    /// The app's Redis keys under `<namespace>:<pattern>`.
    async fn keys_matching(&self, pattern: &str) -> Vec<String> {
        testing::redis_keys(&self.redis_url, &format!("{}:{pattern}", self.namespace)).await
    }

    /// The revoked-session keys in Redis.
    pub async fn revoked_keys(&self) -> Vec<String> {
        self.keys_matching("session:revoked:*").await
    }

    /// A key's remaining lifetime in seconds (-1: none, -2: no key).
    pub async fn ttl(&self, key: &str) -> i64 {
        let client = redis::Client::open(self.redis_url.as_str()).expect("redis URL");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("redis");
        redis::cmd("TTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .expect("TTL")
    }

    /// Every Redis key of the app's namespace.
    pub async fn redis_keys(&self) -> Vec<String> {
        self.keys_matching("*").await
    }

    /// Polls until the app refuses `token` as a session, for at most `within`.
    pub async fn refuses_within(&self, token: &str, within: Duration) -> bool {
        testing::eventually(within, || async {
            self.current_user_with_token(token)
                .await
                .is_none()
                .then_some(())
        })
        .await
        .is_some()
    }

    /// Sends a request through `client` (its cookie jar), with a raw body if given.
    async fn send_through(
        &self,
        client: &reqwest::Client,
        method: Method,
        path: &str,
        body: Option<(Option<&str>, String)>,
    ) -> Reply {
        api::send(client, method, self.url(path), None, body).await
    }

    pub async fn get(&self, client: &reqwest::Client, path: &str) -> Reply {
        self.send_through(client, Method::GET, path, None).await
    }

    /// POSTs a JSON value.
    pub async fn post_json(&self, client: &reqwest::Client, path: &str, body: &Value) -> Reply {
        let body = (Some("application/json"), body.to_string());
        self.send_through(client, Method::POST, path, Some(body))
            .await
    }

    /// POSTs raw bytes with an optional content type.
    pub async fn post_raw(
        &self,
        client: &reqwest::Client,
        path: &str,
        content_type: Option<&str>,
        body: &str,
    ) -> Reply {
        let body = (content_type, body.to_owned());
        self.send_through(client, Method::POST, path, Some(body))
            .await
    }

    pub async fn post_signup(
        &self,
        client: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> Reply {
        self.post_json(
            client,
            "/api/users/signup",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// Signs up and asserts it worked.
    pub async fn signed_up(
        &self,
        client: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> UserBody {
        let reply = self.post_signup(client, email, password).await;
        reply.assert_status(StatusCode::CREATED);
        reply.user()
    }

    pub async fn signin(&self, client: &reqwest::Client, email: &str, password: &str) -> Reply {
        self.post_json(
            client,
            "/api/users/signin",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn signout(&self, client: &reqwest::Client) -> Reply {
        self.send_through(client, Method::POST, "/api/users/signout", None)
            .await
    }

    /// `GET /api/users/currentuser`, asserting 200 and the contract's shape.
    pub async fn current_user(&self, client: &reqwest::Client) -> Option<SessionClaims> {
        current_user_of(self.get(client, "/api/users/currentuser").await)
    }

    /// The current user for a request carrying exactly this `Cookie` header (no jar).
    pub async fn current_user_with_cookie(&self, cookie: &str) -> Option<SessionClaims> {
        let response = client_builder()
            .build()
            .expect("HTTP client")
            .get(self.url("/api/users/currentuser"))
            .header(COOKIE, cookie)
            .send()
            .await
            .expect("GET");
        current_user_of(Reply::read(response).await)
    }

    /// The current user for a request carrying `session=<token>`.
    pub async fn current_user_with_token(&self, token: &str) -> Option<SessionClaims> {
        self.current_user_with_cookie(&format!("{COOKIE_NAME}={token}"))
            .await
    }

    /// Users whose e-mail equals `email` ignoring case.
    pub async fn users_with_email(&self, email: &str) -> Vec<UserRow> {
        sqlx::query_as("SELECT id, email, password_hash FROM users WHERE lower(email) = lower($1)")
            .bind(email)
            .fetch_all(&self.pool)
            .await
            .expect("query users")
    }

    pub async fn user_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(&self.pool)
            .await
            .expect("count users")
    }
}

fn current_user_of(reply: Reply) -> Option<SessionClaims> {
    reply.assert_status(StatusCode::OK);
    let body = reply.json();
    let object = body
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {body}"));
    assert_eq!(
        object.keys().collect::<Vec<_>>(),
        ["currentUser"],
        "body: {body}"
    );
    match &object["currentUser"] {
        Value::Null => None,
        user => Some(
            serde_json::from_value(user.clone())
                .unwrap_or_else(|e| panic!("currentUser shape ({e}): {body}")),
        ),
    }
}

/// The median of some durations.
pub fn median(mut samples: Vec<Duration>) -> Duration {
    assert!(!samples.is_empty());
    samples.sort();
    samples[samples.len() / 2]
}

/// Milliseconds, for messages.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
