//! The whole platform in this process, with the web pages, on one random port.
//!
//! Every [`Stack`] has its own namespace: four databases (dropped with it), its own stream
//! and subjects (deleted with it) and its own Redis keys (removed with it). The web
//! component needs the server's own address as its API base, so the stack binds first and
//! then composes, instead of using `TestServer::start`.
//!
//! [`testing::OPERATOR_EMAIL`] names the operator (`ADMIN_EMAILS`): whoever signs up with it
//! is one. Payments use the development provider, which [`Stack::provider`] can make refuse
//! refunds or stop answering. A stack started without expiration workers leaves its queue to
//! the test ([`Stack::queue`], driven with `Worker::work_once`), and [`Stack::publish`] sends
//! an event as another service would.

#![allow(dead_code)]

use std::{net::SocketAddr, sync::Arc, time::Duration};

use ticketing_common::{
    bus::Bus,
    cache::CacheSettings,
    component, db,
    forwarded::Proxies,
    session::{Operators, Revocations, SessionKeys},
    testing::{self, OPERATOR_EMAIL, RedisKeys, TestBus, TestDb},
};
use ticketing_expiration::{
    PublishExpiration,
    queue::Queue,
    worker::{Fire, Worker, now_ms},
};
use ticketing_payments::provider::{DevProvider, Provider};
use ticketing_web::{Forwarding, WebSettings};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How to start a [`Stack`].
pub struct Config<'a> {
    /// How long an unpaid order lives.
    pub window: Duration,
    pub stripe_publishable_key: Option<&'a str>,
    /// Sign-in attempts per visitor address per minute; 0: no sign-in limits.
    pub rate_limit_per_minute: u32,
    /// Workers of the expiration queue; 0 leaves firing jobs to the test.
    pub expiration_workers: usize,
}

pub struct Stack {
    pub addr: SocketAddr,
    /// The payment provider payments call.
    pub provider: DevProvider,
    /// The expiration queue the stack's expiration component serves.
    pub queue: Queue,
    shutdown: CancellationToken,
    bus: TestBus,
    dbs: Vec<TestDb>,
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
            expiration_workers: 1,
        })
        .await
    }

    /// Every component, with no expiration worker: the test fires (or fails) the queue's jobs
    /// itself.
    pub async fn without_expiration_workers() -> Stack {
        Stack::configured(Config {
            window: Duration::from_secs(900),
            stripe_publishable_key: None,
            rate_limit_per_minute: 0,
            expiration_workers: 0,
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
            expiration_workers,
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
        // As `ticketing_auth::build` does: its operator actions table too.
        db::migrate_service(
            &auth_db.pool,
            &ticketing_auth::MIGRATOR,
            ticketing_auth::NAME,
            false,
        )
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
            ticketing_expiration::component(queue.clone(), &bus, expiration_workers),
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
            queue,
            shutdown,
            bus: test_bus,
            dbs: vec![auth_db, tickets_db, orders_db, payments_db],
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

    /// The orders service's database.
    pub fn orders_db(&self) -> &TestDb {
        &self.dbs[2]
    }

    /// The payments service's database.
    pub fn payments_db(&self) -> &TestDb {
        &self.dbs[3]
    }

    /// Breaks one service's database under the running stack (renames `table`), so its API
    /// answers 500 from then on: a backend failing as it would in production. Through
    /// `psql` (PostgreSQL's client, installed with the server): the web crate does not
    /// depend on a database driver.
    pub async fn break_table(&self, db: &TestDb, table: &str) {
        let name = db.target.options.get_database().expect("a database name");
        let server = testing::database_url();
        let (base, query) = server.split_once('?').unwrap_or((&server, ""));
        let base = &base[..base.rfind('/').expect("a database in the URL")];
        let url = if query.is_empty() {
            format!("{base}/{name}")
        } else {
            format!("{base}/{name}?{query}")
        };
        let status = tokio::process::Command::new("psql")
            .args([
                url.as_str(),
                "-v",
                "ON_ERROR_STOP=1",
                "-qc",
                &format!("ALTER TABLE {table} RENAME TO {table}_gone"),
            ])
            .status()
            .await
            .expect("psql runs");
        assert!(status.success(), "psql renamed {table} in {name}");
    }

    /// The bus every service of the stack reads and writes.
    pub fn bus(&self) -> &Bus {
        &self.bus.bus
    }

    /// Publishes an event envelope (`{id, type, occurredAt, data}`) on `subject` (without the
    /// namespace), as another service would, and waits for JetStream's ack.
    pub async fn publish(&self, subject: &str, data: serde_json::Value) {
        let envelope = serde_json::json!({
            "id": Uuid::now_v7(),
            "type": subject,
            "occurredAt": time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap(),
            "data": data,
        });
        let bus = self.bus();
        bus.jetstream()
            .publish(
                format!("{}.{subject}", self.bus.namespace.subject_prefix()),
                serde_json::to_vec(&envelope).unwrap().into(),
            )
            .await
            .expect("publish")
            .await
            .expect("JetStream ack");
    }

    /// Schedules the expiry of `order`, due now, and has a worker whose publish fails try it
    /// once, which with one attempt allowed leaves it failed (in the dead set).
    pub async fn fail_a_job(&self, order: Uuid) {
        assert!(self.queue.enqueue(order, now_ms() - 1_000).await.unwrap());
        let queue = self.queue.clone().with_retries(1, Duration::from_millis(1));
        Worker::new(queue, FailingPublish)
            .work_once()
            .await
            .unwrap();
    }

    /// Fires every due job of the queue once, publishing as production does.
    pub async fn fire_due_jobs(&self) {
        let publish = PublishExpiration {
            bus: self.bus().clone(),
        };
        Worker::new(self.queue.clone(), publish)
            .work_once()
            .await
            .unwrap();
    }
}

/// A job's firing fails, as when NATS does not take its `expiration.complete`.
struct FailingPublish;

impl Fire for FailingPublish {
    async fn fire(&self, _: Uuid) -> anyhow::Result<()> {
        anyhow::bail!("NATS said no")
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
