//! Helpers for integration tests against the real PostgreSQL, Redis and NATS.
//!
//! Every test gets its own namespace, hence its own databases, stream, subjects and Redis key
//! prefix; [`TestDb`] and [`TestBus`] remove what they made when dropped, so neither the
//! shared servers nor the next run see leftovers. Nothing here stops or reconfigures the
//! shared servers. [`app`] puts these together into one service under test, which [`api`]
//! talks to.

pub mod api;
pub mod app;
pub mod cluster;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    bus::Bus,
    component::{self, Component},
    db::{self, DatabaseTarget},
    session::{Operators, SessionKeys},
    settings::Namespace,
};

/// The PostgreSQL server tests use (`DATABASE_URL`, or the local default).
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The NATS server tests use (`NATS_URL`, or the local default).
pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// The Redis server tests use (`REDIS_URL`, or the local default).
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A namespace no other test uses.
pub fn unique_namespace() -> Namespace {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("t_{}", &id[..16]).parse().expect("valid namespace")
}

/// The e-mail of the operator tests name (`ADMIN_EMAILS`); see [`api::User::operator`].
pub const OPERATOR_EMAIL: &str = "operator@example.com";

/// The signing key tests use, with [`OPERATOR_EMAIL`] as the one operator.
pub fn session_keys() -> Arc<SessionKeys> {
    Arc::new(
        SessionKeys::new(b"test-key-test-key-test-key-test-key!", false)
            .expect("valid key")
            .with_operators(Operators::parse(Some(OPERATOR_EMAIL))),
    )
}

/// Runs `f` on a fresh runtime in its own thread; for clean-up in `Drop`. `f` must open its
/// own connections: the test's runtime, which drives the test's connections, is blocked here.
fn block_on_side<F: Future<Output = ()> + Send + 'static>(f: F) {
    let _ = std::thread::spawn(move || {
        if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            runtime.block_on(f);
        }
    })
    .join();
}

/// A database made for one test and dropped with it.
pub struct TestDb {
    pub pool: PgPool,
    pub target: DatabaseTarget,
}

impl TestDb {
    /// Creates `<namespace>_<service>` on the test server.
    pub async fn create(namespace: &Namespace, service: &str) -> TestDb {
        let target = DatabaseTarget::resolve(&database_url(), None, &namespace.database(service))
            .expect("database URL");
        let pool = target.connect(20).await.expect("test database");
        TestDb { pool, target }
    }

    /// A second pool on the database, for the app under test. Not `self.pool`: the drop
    /// waits, on another runtime, for every connection of `self.pool` to come back, and a
    /// connection the app has just released comes back through a task on the test's runtime,
    /// so the test would hang. With a pool of its own the app leaves `self.pool` idle, and
    /// the drop's `DROP DATABASE … WITH (FORCE)` ends the app's connections.
    pub async fn app_pool(&self, max_connections: u32) -> PgPool {
        self.app_pool_with(max_connections, Duration::from_secs(10))
            .await
    }

    /// [`TestDb::app_pool`] whose requests for a connection give up after `acquire_timeout`
    /// (tests of a starved pool).
    pub async fn app_pool_with(&self, max_connections: u32, acquire_timeout: Duration) -> PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(acquire_timeout)
            .connect_with(self.target.options.clone())
            .await
            .expect("connect to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let target = self.target.clone();
        // FORCE ends the test's own connections, which cannot be closed from here.
        block_on_side(async move {
            let _ = db::drop_database(&target).await;
        });
    }
}

/// A bus on a stream made for one test and deleted with it.
pub struct TestBus {
    pub bus: Bus,
    pub namespace: Namespace,
    url: String,
}

impl TestBus {
    pub async fn create(namespace: &Namespace) -> TestBus {
        TestBus::on(&nats_url(), namespace).await
    }

    /// A bus on a given server (tests that start their own NATS).
    pub async fn on(url: &str, namespace: &Namespace) -> TestBus {
        let bus = Bus::connect(url, namespace)
            .await
            .expect("NATS with JetStream");
        TestBus {
            bus,
            namespace: namespace.clone(),
            url: url.to_owned(),
        }
    }
}

impl Drop for TestBus {
    fn drop(&mut self) {
        let (url, stream) = (self.url.clone(), self.bus.stream_name().to_owned());
        block_on_side(async move {
            let delete = async {
                let client = async_nats::connect(url).await.ok()?;
                async_nats::jetstream::new(client)
                    .delete_stream(stream)
                    .await
                    .ok()
            };
            let _ = tokio::time::timeout(Duration::from_secs(2), delete).await;
        });
    }
}

/// A running server on a random port; stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
}

impl TestServer {
    /// Serves components on 127.0.0.1 with a random port.
    pub async fn start(components: Vec<Component>, keys: Arc<SessionKeys>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let shutdown = CancellationToken::new();
        let app = component::compose(components, keys);
        let token = shutdown.clone();
        tokio::spawn(async move {
            if let Err(error) = component::serve(listener, app, token).await {
                eprintln!("test server stopped: {error:#}");
            }
        });
        TestServer { addr, shutdown }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Polls `check` until it returns `Some` or `timeout` passes. Tests wait for effects this way,
/// never with a fixed sleep.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A free TCP port on 127.0.0.1 (for servers a test starts itself).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A redis-server of the test's own on a free port, which the test may kill and restart
/// (outage and persistence tests never touch the shared Redis).
pub struct OwnRedis {
    pub port: u16,
    args: Vec<String>,
    dir: std::path::PathBuf,
    child: Option<tokio::process::Child>,
}

impl OwnRedis {
    /// Starts `redis-server` on loopback with no persistence, plus `extra` arguments (for
    /// example `["--appendonly", "yes"]`; its files go to a private directory).
    pub async fn start(extra: &[&str]) -> OwnRedis {
        let dir =
            std::env::temp_dir().join(format!("ticketing-redis-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("redis directory");
        let port = free_port();
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push("--dir".into());
        args.push(dir.display().to_string());
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut redis = OwnRedis {
            port,
            args,
            dir,
            child: None,
        };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on the same port and directory, and waits until it answers.
    pub async fn restart(&mut self) {
        let child = tokio::process::Command::new("redis-server")
            .args(&self.args)
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server on PATH (scripts/services.sh installs it)");
        self.child = Some(child);
        let port = self.port;
        let up = eventually(Duration::from_secs(10), || async move {
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
            let mut conn = client.get_multiplexed_async_connection().await.ok()?;
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .ok()
        })
        .await;
        assert!(up.is_some(), "own redis-server did not start");
    }

    /// SIGKILL, as a crash would.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How many messages the bus's stream holds on one full subject.
pub async fn count_on_subject(bus: &Bus, subject: &str) -> u64 {
    use futures::TryStreamExt;
    let Ok(stream) = bus.jetstream().get_stream(bus.stream_name()).await else {
        return 0;
    };
    let Ok(subjects) = stream.info_with_subjects(subject).await else {
        return 0;
    };
    let counts: Vec<(String, usize)> = subjects.try_collect().await.unwrap_or_default();
    counts
        .into_iter()
        .filter(|(s, _)| s == subject)
        .map(|(_, n)| n as u64)
        .sum()
}

/// Deletes every Redis key under a prefix when dropped, so tests leave the shared Redis as
/// they found it.
pub struct RedisKeys {
    url: String,
    pattern: String,
}

impl RedisKeys {
    /// The keys of one namespace: `<prefix>:*`.
    pub fn of(url: &str, namespace: &Namespace) -> RedisKeys {
        RedisKeys::new(url, &format!("{}:", namespace.redis_prefix()))
    }

    pub fn new(url: &str, prefix: &str) -> RedisKeys {
        RedisKeys {
            url: url.to_owned(),
            pattern: format!("{prefix}*"),
        }
    }
}

impl RedisKeys {
    /// The keys there are now.
    pub async fn list(&self) -> Vec<String> {
        redis_keys(&self.url, &self.pattern).await
    }
}

/// The keys of a Redis matching a `KEYS` pattern.
pub async fn redis_keys(url: &str, pattern: &str) -> Vec<String> {
    let client = redis::Client::open(url).expect("redis URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    redis::cmd("KEYS")
        .arg(pattern)
        .query_async(&mut conn)
        .await
        .expect("KEYS")
}

impl Drop for RedisKeys {
    fn drop(&mut self) {
        let (url, pattern) = (self.url.clone(), self.pattern.clone());
        block_on_side(async move {
            let Ok(client) = redis::Client::open(url) else {
                return;
            };
            let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
                return;
            };
            let keys: Vec<String> = match redis::cmd("KEYS")
                .arg(&pattern)
                .query_async(&mut conn)
                .await
            {
                Ok(keys) => keys,
                Err(_) => return,
            };
            if !keys.is_empty() {
                let _: Result<(), _> = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await;
            }
        });
    }
}

/// A TCP forwarder in front of a real server that a test can close (every connection cut,
/// new ones refused) and open again on the same port: an outage of that server as its
/// clients see it, without touching the shared server itself.
pub struct TcpGate {
    pub port: u16,
    target: SocketAddr,
    open: std::sync::Mutex<Option<CancellationToken>>,
}

impl TcpGate {
    /// A gate to `target`, open.
    pub async fn start(target: SocketAddr) -> TcpGate {
        let gate = TcpGate {
            port: free_port(),
            target,
            open: std::sync::Mutex::new(None),
        };
        gate.open().await;
        gate
    }

    /// Accepts and forwards connections (again).
    pub async fn open(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("the gate's port");
        let token = CancellationToken::new();
        let (accepting, target) = (token.clone(), self.target);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    () = accepting.cancelled() => return,
                };
                let Ok((mut inbound, _)) = accepted else {
                    continue;
                };
                let cut = accepting.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        () = cut.cancelled() => {}
                    }
                });
            }
        });
        *self.open.lock().expect("gate lock") = Some(token);
    }

    /// Cuts every connection through the gate and refuses new ones.
    pub fn close(&self) {
        if let Some(token) = self.open.lock().expect("gate lock").take() {
            token.cancel();
        }
    }
}

impl Drop for TcpGate {
    fn drop(&mut self) {
        self.close();
    }
}
