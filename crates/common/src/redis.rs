//! Redis connections: to one server (`redis://…`) or to whichever server a set of Sentinels
//! names master (`redis+sentinel://…`), with a plain message when Redis is not there.
//!
//! [`Redis`] is the one connection type the services use. It reconnects by itself (the
//! redis crate's `ConnectionManager` underneath) and, under Sentinel, asks the sentinels for
//! the master again whenever the one it talks to stops answering or turns read-only (a
//! failover), so a process follows a failover without a restart. The command that met the
//! failure still fails (callers retry: the worker, the listeners, the breakers); the next
//! one goes to the new master.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use redis::{
    Client, Cmd, ErrorKind, Pipeline, RedisConnectionInfo, RedisError, RedisFuture, RedisResult,
    ServerErrorKind, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    sentinel::{Sentinel, SentinelNodeConnectionInfo},
};

use crate::secret::redact_url;

/// The scheme of a Sentinel-managed Redis.
pub const SENTINEL_SCHEME: &str = "redis+sentinel://";
/// The port of a sentinel named without one.
const SENTINEL_PORT: u16 = 26379;

fn config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_millis(500)))
        .set_number_of_retries(1)
}

/// A Redis connection, cheap to clone; every clone shares one connection (multiplexed) and
/// follows the same master.
#[derive(Clone)]
pub struct Redis {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("sentinel", &self.is_sentinel())
            .finish_non_exhaustive()
    }
}

struct Shared {
    source: Source,
    config: ConnectionManagerConfig,
    db: i64,
    /// The server in use, once known (always, for a plain URL).
    current: Mutex<Option<Node>>,
    /// One lookup of the master at a time; the others wait for its answer.
    lookup: tokio::sync::Mutex<()>,
    generation: AtomicU64,
}

enum Source {
    Direct,
    Sentinel(Box<Sentinels>),
}

/// Where to ask for the master, and how to talk to it.
struct Sentinels {
    sentinel: tokio::sync::Mutex<Sentinel>,
    master: String,
    node: SentinelNodeConnectionInfo,
}

/// One server and the connection to it.
#[derive(Clone)]
struct Node {
    client: Client,
    manager: ConnectionManager,
    generation: u64,
}

/// What a `redis+sentinel://` URL says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelUrl {
    /// `host:port` of each sentinel.
    pub sentinels: Vec<(String, u16)>,
    /// The name the sentinels monitor the master under.
    pub master: String,
    pub db: i64,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// Reads `redis+sentinel://[[user]:password@]host:port,host:port,…/<master name>[/<db>]`;
/// the credentials and database are the master's (and its replicas'). `None` for another
/// scheme. Errors never repeat the URL (it may hold a password).
pub fn parse_sentinel_url(url: &str) -> Option<anyhow::Result<SentinelUrl>> {
    let rest = url.trim().strip_prefix(SENTINEL_SCHEME)?;
    Some((|| {
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (credentials, hosts) = match authority.rsplit_once('@') {
            Some((credentials, hosts)) => (Some(credentials), hosts),
            None => (None, authority),
        };
        let (username, password) = match credentials {
            None => (None, None),
            Some(credentials) => match credentials.split_once(':') {
                Some((user, password)) => (
                    Some(user.to_owned()).filter(|u| !u.is_empty()),
                    Some(password.to_owned()),
                ),
                None => (None, Some(credentials.to_owned())),
            },
        };
        if password.as_deref() == Some("") {
            anyhow::bail!("the password is empty (leave the credentials out for none)");
        }
        let sentinels = hosts
            .split(',')
            .map(|host| {
                let host = host.trim();
                let (name, port) = match host.rsplit_once(':') {
                    Some((name, port)) => (
                        name,
                        port.parse::<u16>()
                            .ok()
                            .filter(|p| *p > 0)
                            .context("a sentinel's port is not a port number")?,
                    ),
                    None => (host, SENTINEL_PORT),
                };
                if name.is_empty() {
                    bail!("a sentinel has no host");
                }
                Ok((name.to_owned(), port))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut path = path.split('/');
        let master = path.next().unwrap_or_default().trim().to_owned();
        if master.is_empty() {
            bail!("no master name: end the URL with /<master name>");
        }
        let db = match path.next().filter(|db| !db.is_empty()) {
            Some(db) => db.parse().context("the database is not a number")?,
            None => 0,
        };
        Ok(SentinelUrl {
            sentinels,
            master,
            db,
            username,
            password,
        })
    })())
}

impl Redis {
    /// A connection to `url` (`redis://…` or `redis+sentinel://…`) with `config`'s timeouts
    /// and retries, connecting on first use.
    pub fn open(url: &str, config: ConnectionManagerConfig) -> anyhow::Result<Redis> {
        let invalid = || format!("invalid Redis URL {}", redact_url(url));
        let (source, direct, db) = match parse_sentinel_url(url) {
            Some(parsed) => {
                let parsed = parsed.with_context(invalid)?;
                let nodes: Vec<String> = parsed
                    .sentinels
                    .iter()
                    .map(|(host, port)| format!("redis://{host}:{port}"))
                    .collect();
                let sentinel = Sentinel::build(nodes).with_context(invalid)?;
                let mut info = RedisConnectionInfo::default().set_db(parsed.db);
                if let Some(user) = &parsed.username {
                    info = info.set_username(user);
                }
                if let Some(password) = &parsed.password {
                    info = info.set_password(password);
                }
                let source = Source::Sentinel(Box::new(Sentinels {
                    sentinel: tokio::sync::Mutex::new(sentinel),
                    master: parsed.master,
                    node: SentinelNodeConnectionInfo::default().set_redis_connection_info(info),
                }));
                (source, None, parsed.db)
            }
            None => {
                let client = Client::open(url).with_context(invalid)?;
                let db = client.get_connection_info().redis_settings().db();
                (Source::Direct, Some(client), db)
            }
        };
        let shared = Shared {
            source,
            config: config.clone(),
            db,
            current: Mutex::new(None),
            lookup: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
        };
        if let Some(client) = direct {
            let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
            *shared.current.lock().expect("redis lock") = Some(Node {
                client,
                manager,
                generation: 0,
            });
        }
        Ok(Redis {
            shared: Arc::new(shared),
        })
    }

    /// Whether the master is found through Sentinel.
    pub fn is_sentinel(&self) -> bool {
        matches!(self.shared.source, Source::Sentinel(_))
    }

    /// A connection for pub/sub (its own socket), to the server in use.
    pub async fn pubsub(&self) -> RedisResult<redis::aio::PubSub> {
        let node = self.node().await?;
        let result = node.client.get_async_pubsub().await;
        self.check(&node, result.as_ref().err());
        result
    }

    /// The server in use; under Sentinel, the master the sentinels name, looked up when
    /// there is none yet (or the last one failed).
    async fn node(&self) -> RedisResult<Node> {
        if let Some(node) = self.shared.current.lock().expect("redis lock").clone() {
            return Ok(node);
        }
        let Source::Sentinel(sentinels) = &self.shared.source else {
            unreachable!("a plain URL always has its node");
        };
        let Sentinels {
            sentinel,
            master,
            node,
        } = sentinels.as_ref();
        let _lookup = self.shared.lookup.lock().await;
        // Someone else may have found it while this one waited.
        if let Some(node) = self.shared.current.lock().expect("redis lock").clone() {
            return Ok(node);
        }
        let patience = self
            .shared
            .config
            .connection_timeout()
            .unwrap_or(Duration::from_secs(2))
            * 2;
        let client = {
            let mut sentinel = sentinel.lock().await;
            tokio::time::timeout(patience, sentinel.async_master_for(master, Some(node)))
                .await
                .map_err(|_| {
                    RedisError::from(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the sentinels did not name a master in time",
                    ))
                })??
        };
        let manager =
            ConnectionManager::new_lazy_with_config(client.clone(), self.shared.config.clone())?;
        let generation = self.shared.generation.fetch_add(1, Ordering::AcqRel) + 1;
        let found = Node {
            client,
            manager,
            generation,
        };
        tracing::info!(master = %master, server = %found.client.get_connection_info().addr(), "Redis master found through Sentinel");
        *self.shared.current.lock().expect("redis lock") = Some(found.clone());
        Ok(found)
    }

    /// After a failure on `node`: under Sentinel, a failure that says the master is gone or
    /// is no longer master makes the next command look the master up again.
    fn check(&self, node: &Node, error: Option<&RedisError>) {
        let Some(error) = error else { return };
        if !self.is_sentinel() || !master_lost(error) {
            return;
        }
        let mut current = self.shared.current.lock().expect("redis lock");
        if current
            .as_ref()
            .is_some_and(|c| c.generation == node.generation)
        {
            tracing::warn!(server = %node.client.get_connection_info().addr(), error = %error, "Redis master lost; asking the sentinels again");
            *current = None;
        }
    }
}

/// Whether an error means the server is gone or no longer the master.
fn master_lost(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || matches!(
            error.kind(),
            ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown)
        )
        || error.code().is_some_and(|code| code == "READONLY")
}

impl ConnectionLike for Redis {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut node = self.node().await?;
            let result = node.manager.send_packed_command(cmd).await;
            self.check(&node, result.as_ref().err());
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let mut node = self.node().await?;
            let result = node
                .manager
                .send_packed_commands(pipeline, offset, count)
                .await;
            self.check(&node, result.as_ref().err());
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.shared.db
    }
}

/// A self-reconnecting connection that connects on first use: for what works without Redis
/// for a while (session revocations fail open, attempt limits count in process), so a
/// process can start, and keep starting, during a Redis outage. Fails only on a bad URL.
pub fn lazy(url: &str) -> anyhow::Result<Redis> {
    lazy_with(url, config())
}

/// [`lazy`] with the caller's timeouts and retries.
pub fn lazy_with(url: &str, config: ConnectionManagerConfig) -> anyhow::Result<Redis> {
    Redis::open(url, config)
}

/// A self-reconnecting connection. Fails at start-up, with one clear line, if Redis does not
/// answer; afterwards it reconnects by itself.
pub async fn connect(url: &str) -> anyhow::Result<Redis> {
    connect_with(url, config()).await
}

/// [`connect`] with the caller's timeouts and retries.
pub async fn connect_with(url: &str, config: ConnectionManagerConfig) -> anyhow::Result<Redis> {
    let mut conn = Redis::open(url, config)?;
    tokio::time::timeout(Duration::from_secs(5), ping(&mut conn))
        .await
        .map_err(|_| anyhow::anyhow!("timed out"))
        .and_then(|r| r)
        .with_context(|| unreachable_message(url))?;
    Ok(conn)
}

/// `PING`, for readiness checks.
pub async fn ping(conn: &mut Redis) -> anyhow::Result<()> {
    let _: String = redis::cmd("PING").query_async(conn).await?;
    Ok(())
}

/// The one line a user sees when Redis is not there.
pub fn unreachable_message(url: &str) -> String {
    let what = match url.trim().starts_with(SENTINEL_SCHEME) {
        true => "Redis (through its sentinels) is not reachable at",
        false => "Redis is not reachable at",
    };
    format!(
        "{what} {}: start redis-server (scripts/services.sh starts a local one) or set REDIS_URL",
        redact_url(url)
    )
}

/// A circuit breaker for a Redis its user can do without for a while (the cache, session
/// revocations, shared attempt limits): after a failure Redis is left alone for a cool-down,
/// so an outage costs one timeout per cool-down rather than one per request, and
/// [`Breaker::failed`] and [`Breaker::recovered`] say when an outage starts and ends, so each
/// is logged once.
#[derive(Debug, Default)]
pub struct Breaker {
    down_until: Mutex<Option<Instant>>,
    outage: AtomicBool,
}

impl Breaker {
    /// Whether Redis may be tried now.
    pub fn usable(&self) -> bool {
        self.down_until
            .lock()
            .expect("breaker lock")
            .is_none_or(|until| Instant::now() >= until)
    }

    /// Records a failure (Redis is left alone for `cool_down`); `true` if this starts an
    /// outage.
    pub fn failed(&self, cool_down: Duration) -> bool {
        *self.down_until.lock().expect("breaker lock") = Some(Instant::now() + cool_down);
        !self.outage.swap(true, Ordering::AcqRel)
    }

    /// Records a success; `true` if this ends an outage.
    pub fn recovered(&self) -> bool {
        self.outage.load(Ordering::Acquire) && self.outage.swap(false, Ordering::AcqRel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_stands_redis_aside_for_the_cool_down_and_each_outage_is_told_once() {
        let breaker = Breaker::default();
        assert!(breaker.usable());
        assert!(!breaker.recovered(), "nothing to recover from");
        assert!(breaker.failed(Duration::from_secs(60)), "an outage starts");
        assert!(!breaker.usable(), "left alone while cooling down");
        assert!(!breaker.failed(Duration::from_secs(60)), "the same outage");
        assert!(breaker.recovered(), "the outage ends");
        assert!(!breaker.recovered(), "once");
        breaker.failed(Duration::ZERO);
        assert!(breaker.usable(), "tried again once the cool-down is over");
    }

    #[test]
    fn a_sentinel_url_names_the_sentinels_the_master_and_its_credentials() {
        let parsed =
            parse_sentinel_url("redis+sentinel://:s3cret@10.0.0.1:26379,s2:26380,s3/queue/2")
                .unwrap()
                .unwrap();
        assert_eq!(
            parsed.sentinels,
            vec![
                ("10.0.0.1".to_owned(), 26379),
                ("s2".to_owned(), 26380),
                ("s3".to_owned(), SENTINEL_PORT)
            ]
        );
        assert_eq!(parsed.master, "queue");
        assert_eq!(parsed.db, 2);
        assert_eq!(parsed.username, None);
        assert_eq!(parsed.password.as_deref(), Some("s3cret"));
        let plain = parse_sentinel_url("redis+sentinel://a:1,b:2,c:3/mymaster")
            .unwrap()
            .unwrap();
        assert_eq!((plain.master.as_str(), plain.db), ("mymaster", 0));
        assert!(parse_sentinel_url("redis://127.0.0.1:6379").is_none());
        for bad in [
            "redis+sentinel://a:1,b:2",
            "redis+sentinel://a:1,b:2/",
            "redis+sentinel://a:x/m",
            "redis+sentinel://a:1,,b:2/m",
            "redis+sentinel://a:1/m/zero",
            "redis+sentinel://:@a:1/m",
            "redis+sentinel://@a:1/m",
        ] {
            assert!(
                parse_sentinel_url(bad).unwrap().is_err(),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn a_bad_sentinel_url_is_refused_without_repeating_its_password() {
        let error = Redis::open("redis+sentinel://:hunter2@a:1/", config()).unwrap_err();
        let message = format!("{error:#}");
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.contains("master name"), "{message}");
    }
}
