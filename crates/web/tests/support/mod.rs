//! The whole platform in this process, with the web pages, on one random port.
//!
//! Every [`Stack`] has its own namespace: four databases (dropped with it), its own stream
//! and subjects (deleted with it) and its own Redis keys (removed with it). The web
//! component needs the server's own address as its API base, so the stack binds first and
//! then composes, instead of using `TestServer::start`.
//!
//! [`testing::OPERATOR_EMAIL`] names the operator (`ADMIN_EMAILS`): whoever signs up with it
//! is one. Payments use the development provider, which [`Stack::provider`] can make refuse
//! refunds or stop answering.

#![allow(dead_code)]

use std::{net::SocketAddr, sync::Arc, time::Duration};

use ticketing_common::{
    cache::CacheSettings,
    component,
    forwarded::Proxies,
    session::{Operators, Revocations, SessionKeys},
    testing::{self, OPERATOR_EMAIL, RedisKeys, TestBus, TestDb},
};
use ticketing_payments::provider::{DevProvider, Provider};
use ticketing_web::{Forwarding, WebSettings};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How to start a [`Stack`].
pub struct Config<'a> {
    /// How long an unpaid order lives.
    pub window: Duration,
    pub stripe_publishable_key: Option<&'a str>,
    /// Sign-in attempts per visitor address per minute; 0: no sign-in limits.
    pub rate_limit_per_minute: u32,
}

pub struct Stack {
    pub addr: SocketAddr,
    /// The payment provider payments call.
    pub provider: DevProvider,
    shutdown: CancellationToken,
    _bus: TestBus,
    _dbs: Vec<TestDb>,
    _keys: RedisKeys,
}

impl Stack {
    /// Every component with an order window of `window`.
    pub async fn start(window: Duration) -> Stack {
        Stack::start_with(window, None).await
    }

    /// Every component with an order window of `window`, and the web pages set up for
    /// Stripe with `stripe_publishable_key` when given.
    pub async fn start_with(window: Duration, stripe_publishable_key: Option<&str>) -> Stack {
        Stack::configured(Config {
            window,
            stripe_publishable_key,
            rate_limit_per_minute: 0,
        })
        .await
    }

    /// Every component as `ticketing up` wires them: revocable sessions in Redis, and the
    /// web pages forwarding each visitor's address to the API with the process's token.
    pub async fn configured(config: Config<'_>) -> Stack {
        let Config {
            window,
            stripe_publishable_key,
            rate_limit_per_minute,
        } = config;
        let ns = testing::unique_namespace();
        let redis_url = testing::redis_url();
        let keys_guard = RedisKeys::of(&redis_url, &ns);
        let test_bus = TestBus::create(&ns).await;
        let bus = test_bus.bus.clone();
        let revocations = Revocations::open(&redis_url, &ns).expect("the queue Redis");
        let session = Arc::new(
            SessionKeys::new(b"test-key-test-key-test-key-test-key!", false)
                .expect("test key")
                .with_revocations(Arc::new(revocations))
                .with_operators(Operators::parse(Some(OPERATOR_EMAIL))),
        );
        let token = session.forwarding_token().clone();
        let limits = ticketing_auth::Limits::new(
            rate_limit_per_minute,
            Proxies::none().with_internal(token.clone()),
            &redis_url,
            &ns,
        )
        .expect("limits");

        let auth_db = TestDb::create(&ns, ticketing_auth::NAME).await;
        ticketing_auth::MIGRATOR
            .run(&auth_db.pool)
            .await
            .expect("migrate auth");
        let tickets_db = TestDb::create(&ns, ticketing_tickets::NAME).await;
        ticketing_tickets::migrate(&tickets_db.pool)
            .await
            .expect("migrate tickets");
        let orders_db = TestDb::create(&ns, ticketing_orders::NAME).await;
        ticketing_orders::migrate(&orders_db.pool)
            .await
            .expect("migrate orders");
        let payments_db = TestDb::create(&ns, ticketing_payments::NAME).await;
        ticketing_payments::migrate(&payments_db.pool)
            .await
            .expect("migrate payments");

        let cache = ticketing_tickets::cache::TicketCache::new(
            &redis_url,
            ns.redis_prefix(),
            CacheSettings::default(),
        )
        .expect("ticket cache");
        let queue = ticketing_expiration::queue::Queue::connect(
            &redis_url,
            ns.redis_prefix(),
            Duration::from_secs(30),
        )
        .await
        .expect("expiration queue");

        let provider = DevProvider::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let components = vec![
            ticketing_auth::component(auth_db.pool.clone(), session.clone(), limits),
            ticketing_tickets::component(
                ticketing_tickets::Tickets {
                    pool: tickets_db.pool.clone(),
                    cache,
                },
                &bus,
            ),
            ticketing_orders::component(
                ticketing_orders::Orders {
                    window,
                    sweep_interval: Duration::from_secs(1),
                    sweep_grace: Duration::from_secs(2),
                    ..ticketing_orders::Orders::new(orders_db.pool.clone())
                },
                &bus,
            ),
            ticketing_payments::component(
                ticketing_payments::Payments {
                    provider: Provider::Dev(provider.clone()),
                    ..ticketing_payments::Payments::new(payments_db.pool.clone())
                },
                &bus,
            ),
            ticketing_expiration::component(queue, &bus, 1),
            ticketing_web::component(WebSettings {
                api_base: format!("http://{addr}"),
                stripe_publishable_key: stripe_publishable_key.map(str::to_owned),
                forwarding: Forwarding {
                    proxies: Proxies::none(),
                    token: Some(token),
                    https: false,
                },
            }),
        ];
        let app = component::compose(components, session);
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        tokio::spawn(async move {
            if let Err(error) = component::serve(listener, app, token).await {
                eprintln!("test server stopped: {error:#}");
            }
        });
        Stack {
            addr,
            provider,
            shutdown,
            _bus: test_bus,
            _dbs: vec![auth_db, tickets_db, orders_db, payments_db],
            _keys: keys_guard,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The `Origin` our own pages send.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A browser-like client: keeps cookies, does not follow redirects (tests look at them).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}
