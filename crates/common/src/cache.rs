//! A read cache that is fast, never stale for long, and never takes a request down.
//!
//! Two layers in front of the database:
//! - **Redis**, shared by every replica: cache-aside entries with a TTL (± 10 % jitter).
//! - **Process memory**, per replica, for at most `memory_ttl` (1 s by default), trusted only
//!   while this replica is subscribed to the invalidation channel, and held to a byte budget
//!   (`memory_bytes`, a moka cache weighing each entry by its size).
//!
//! Entries belong to a *group* (`t:<id>` for one ticket, `list` for the list pages kept). A group
//! has a generation counter in Redis, and an entry's Redis key contains the generation it was
//! read under. [`ReadCache::invalidate`] (called after a write commits) increments the
//! generations and publishes the group names in one Lua script: older entries become
//! unreachable at once, and every replica drops its memory copies when the message arrives.
//!
//! - **No stale set.** A reader notes the generation before it reads the database and fills
//!   Redis only if the generation is unchanged (checked inside Redis, atomically); a memory
//!   entry carries the local epoch its reader started at and is ignored if its group was
//!   invalidated since.
//! - **Nothing for nothing.** A lookup creates no Redis key: a group's generation is made by
//!   the first fill (or invalidation), so reads of unknown ids leave no trace.
//! - **No stampede.** Concurrent misses on one entry share one load (single flight), and TTL
//!   jitter spreads expiries.
//! - **Redis trouble.** Every Redis call has a short timeout. On an error the cache steps aside
//!   for a second (reads go to the database, writes still commit), logs once per outage, and
//!   tries again by itself. An invalidation that could not reach Redis is retried until it
//!   does; until then this replica does not read Redis at all.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures::{
    FutureExt, StreamExt,
    future::{BoxFuture, Shared},
};
use redis::{Script, aio::ConnectionManagerConfig};
use tokio_util::sync::CancellationToken;

/// How a cache behaves.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// Off: every read goes to the loader (benchmarks compare against this).
    pub enabled: bool,
    /// Lifetime of a Redis entry (jittered by ± 10 %).
    pub ttl: Duration,
    /// Lifetime of a memory entry: the longest another replica's write can stay unseen here
    /// if an invalidation message is lost while the subscription still looks healthy.
    pub memory_ttl: Duration,
    /// Longest wait for any Redis call before falling back to the database.
    pub redis_timeout: Duration,
    /// How long the cache steps aside after a Redis error.
    pub cool_down: Duration,
    /// The memory layer's budget in bytes (keys and values); past it, entries are evicted.
    pub memory_bytes: u64,
}

impl CacheSettings {
    /// The memory layer's default budget (`CACHE_MEMORY_BYTES`): 32 MiB.
    pub const DEFAULT_MEMORY_BYTES: u64 = 32 * 1024 * 1024;
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            enabled: true,
            ttl: Duration::from_secs(60),
            memory_ttl: Duration::from_secs(1),
            redis_timeout: Duration::from_millis(100),
            cool_down: Duration::from_secs(1),
            memory_bytes: CacheSettings::DEFAULT_MEMORY_BYTES,
        }
    }
}

/// Loads an entry from the source of truth; `None` (not found) is not cached.
pub type Loaded = anyhow::Result<Option<Bytes>>;

/// What reads an entry from the source of truth when the cache does not have it: a closure
/// returning a future of [`Loaded`], run on its own so a caller that goes away does not
/// cancel the load the others wait for.
pub trait Loader: FnOnce() -> Self::Load + Send + 'static {
    type Load: Future<Output = Loaded> + Send + 'static;
}

impl<F, Fut> Loader for F
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Loaded> + Send + 'static,
{
    type Load = Fut;
}
type Flight = Shared<BoxFuture<'static, Result<Option<Bytes>, Arc<anyhow::Error>>>>;

/// Bytes an entry costs beyond its key and value (moka's bookkeeping, our stamp).
const MEMORY_ENTRY_OVERHEAD: usize = 96;
/// How long the memory layer remembers that a group was invalidated: longer than any entry
/// lives (`memory_ttl`) plus the slowest load; an entry whose reader started before the
/// oldest record still kept is ignored.
const INVALIDATION_MEMORY: Duration = Duration::from_secs(30);
/// Invalidation records kept at most; past it every older entry is ignored at once.
const MAX_INVALIDATION_RECORDS: usize = 100_000;
/// Generation counters outlive any entry by far, so a counter never resets under a live entry.
const GENERATION_TTL_MS: u64 = 24 * 3600 * 1000;

/// Returns `{1, value}` on a hit, `{0, generation}` on a miss, and `{0, ""}` when the group
/// has no generation yet (never filled, or its counter was evicted): a lookup writes nothing.
/// KEYS[1] generation key; ARGV[1] value-key prefix, ARGV[2] value-key suffix.
const LOOKUP: &str = r"
local generation = redis.call('GET', KEYS[1])
if not generation then return {0, ''} end
local value = redis.call('GET', ARGV[1] .. generation .. ARGV[2])
if value then return {1, value} end
return {0, generation}
";

/// Stores a value only if the generation is still the one the reader saw (1). A reader that
/// saw none starts the group at Redis' clock in microseconds, a value no older entry of the
/// group can carry, if it still has none, and stores its value for one second only (2): a
/// generation an invalidation made since the lookup may have been evicted meanwhile, so the
/// value may be older than a write already answered; kept briefly, it is never stale for
/// longer than the contract's second. KEYS[1] generation key; ARGV: generation (or ""),
/// prefix, suffix, value, ttl ms, generation ttl ms.
const FILL: &str = r"
local generation = ARGV[1]
local ttl = ARGV[5]
local stored = 1
if generation == '' then
  local t = redis.call('TIME')
  generation = t[1] .. string.format('%06d', tonumber(t[2]))
  if not redis.call('SET', KEYS[1], generation, 'PX', ARGV[6], 'NX') then return 0 end
  ttl = math.min(tonumber(ttl), 1000)
  stored = 2
elseif redis.call('GET', KEYS[1]) ~= generation then
  return 0
end
redis.call('SET', ARGV[2] .. generation .. ARGV[3], ARGV[4], 'PX', ttl)
return stored
";

/// Moves every group in KEYS to a new generation and tells every replica.
/// ARGV[1] channel, ARGV[2] message, ARGV[3] generation ttl ms.
const INVALIDATE: &str = r"
-- Generations move to Redis' clock in microseconds (or one past the current value), never
-- back to a value an older entry may carry, even if a counter was evicted meanwhile.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for _, key in ipairs(KEYS) do
  local current = tonumber(redis.call('GET', key) or '0')
  redis.call('SET', key, string.format('%.0f', math.max(now, current + 1)), 'PX', ARGV[3])
end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return #KEYS
";

/// Whether a load's answer is kept (in Redis and memory) or only shared while it runs.
#[derive(Debug, Clone, Copy)]
enum Keep {
    Yes,
    No,
}

/// A load's failure as each of the readers sharing it sees it: the cause chain stays readable
/// (a caller can still tell a saturated pool from a broken query).
#[derive(Debug)]
struct SharedLoadError(Arc<anyhow::Error>);

impl std::fmt::Display for SharedLoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cache load failed")
    }
}

impl std::error::Error for SharedLoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&**self.0)
    }
}

/// A cache of serialised responses, shared by the handles of one service.
#[derive(Clone)]
pub struct ReadCache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ReadCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadCache")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

struct Inner {
    name: &'static str,
    prefix: String,
    channel: String,
    settings: CacheSettings,
    redis: crate::redis::Redis,
    lookup: Script,
    fill: Script,
    invalidate: Script,
    health: crate::redis::Breaker,
    /// Groups whose invalidation has not reached Redis yet, with how often each failed (a
    /// retry clears a group only if it did not fail again meanwhile).
    pending: Mutex<HashMap<String, u64>>,
    memory: Memory,
    /// Loads under way, by entry, with an id so a finished load removes only itself.
    inflight: Mutex<HashMap<String, (u64, Flight)>>,
    flights: AtomicU64,
    stats: Stats,
}

impl ReadCache {
    /// A cache named `name` (for metrics) whose keys live under `<prefix>:`. Connects lazily:
    /// a missing Redis never stops the service from starting.
    pub fn new(
        name: &'static str,
        redis_url: &str,
        prefix: &str,
        settings: CacheSettings,
    ) -> anyhow::Result<Self> {
        let _ = crate::metrics::handle();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.redis_timeout.max(Duration::from_millis(250))))
            .set_response_timeout(Some(settings.redis_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let redis = crate::redis::lazy_with(redis_url, config)?;
        let memory = Memory::new(settings.memory_bytes, settings.memory_ttl);
        Ok(ReadCache {
            inner: Arc::new(Inner {
                name,
                prefix: format!("{prefix}:"),
                channel: format!("{prefix}:invalidate"),
                settings,
                redis,
                lookup: Script::new(LOOKUP),
                fill: Script::new(FILL),
                invalidate: Script::new(INVALIDATE),
                health: crate::redis::Breaker::default(),
                pending: Mutex::default(),
                memory,
                inflight: Mutex::default(),
                flights: AtomicU64::new(0),
                stats: Stats::default(),
            }),
        })
    }

    /// The entry `item` of `group`, from memory, Redis, or `load` (one load at a time per
    /// entry in this process). `load` must read the source of truth.
    pub async fn get_or_load(
        &self,
        group: &str,
        item: &str,
        load: impl Loader,
    ) -> anyhow::Result<Option<Bytes>> {
        let inner = &self.inner;
        if !inner.settings.enabled {
            return load().await;
        }
        if let Some(value) = inner.memory.get(group, item) {
            inner.stats.record(inner.name, Outcome::MemoryHit);
            return Ok(Some(value));
        }
        self.shared_load(group, item, Keep::Yes, load).await
    }

    /// `load`'s answer, kept nowhere, but shared by the requests for the same `item` of
    /// `group` that arrive while it runs (as a cache miss is): for reads not worth keeping
    /// (pages nobody else asks for), so identical requests in a flood still make one query.
    pub async fn load_uncached(
        &self,
        group: &str,
        item: &str,
        load: impl Loader,
    ) -> anyhow::Result<Option<Bytes>> {
        if !self.inner.settings.enabled {
            return load().await;
        }
        self.shared_load(group, &format!("uncached:{item}"), Keep::No, load)
            .await
    }

    /// One load at a time per entry in this process; the others wait for it.
    async fn shared_load(
        &self,
        group: &str,
        item: &str,
        keep: Keep,
        load: impl Loader,
    ) -> anyhow::Result<Option<Bytes>> {
        let inner = &self.inner;
        let flight_key = format!("{group}\n{item}");
        let flight = {
            let mut inflight = inner.inflight.lock().expect("inflight lock");
            match inflight.get(&flight_key) {
                Some((_, flight)) => flight.clone(),
                None => {
                    let this = self.clone();
                    let id = inner.flights.fetch_add(1, Ordering::Relaxed);
                    let (group, item, key) =
                        (group.to_owned(), item.to_owned(), flight_key.clone());
                    // Spawned, so the load finishes (and releases its connection) even if every
                    // request waiting for it goes away.
                    let task = tokio::spawn(async move {
                        let result = match keep {
                            Keep::Yes => this.fetch(&group, &item, load).await,
                            Keep::No => load().await,
                        }
                        .map_err(Arc::new);
                        let mut inflight = this.inner.inflight.lock().expect("inflight lock");
                        if inflight
                            .get(&key)
                            .is_some_and(|(current, _)| *current == id)
                        {
                            inflight.remove(&key);
                        }
                        result
                    });
                    let flight = task
                        .map(|joined| {
                            joined.unwrap_or_else(|e| {
                                Err(Arc::new(anyhow::anyhow!("cache load failed: {e}")))
                            })
                        })
                        .boxed()
                        .shared();
                    inflight.insert(flight_key, (id, flight.clone()));
                    flight
                }
            }
        };
        flight
            .await
            .map_err(|error| anyhow::Error::new(SharedLoadError(error)))
    }

    async fn fetch<F, Fut>(&self, group: &str, item: &str, load: F) -> Loaded
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Loaded>,
    {
        let inner = &self.inner;
        let epoch = inner.memory.epoch();
        let generation_key = inner.generation_key(group);
        let (prefix, suffix) = inner.value_key_parts(group, item);
        if !self.redis_usable() {
            inner.stats.record(inner.name, Outcome::Miss);
            return load().await;
        }
        let mut redis = inner.redis.clone();
        let mut lookup = inner.lookup.key(&generation_key);
        lookup.arg(&prefix).arg(&suffix);
        let lookup = lookup.invoke_async::<(u8, Vec<u8>)>(&mut redis);
        let generation = match tokio::time::timeout(inner.settings.redis_timeout, lookup).await {
            Ok(Ok((1, value))) => {
                self.redis_ok();
                let value = Bytes::from(value);
                inner.stats.record(inner.name, Outcome::RedisHit);
                inner.memory.insert(group, item, value.clone(), epoch);
                return Ok(Some(value));
            }
            Ok(Ok((_, generation))) => {
                self.redis_ok();
                String::from_utf8_lossy(&generation).into_owned()
            }
            Ok(Err(error)) => {
                self.redis_failed(&error.to_string());
                inner.stats.record(inner.name, Outcome::Miss);
                return load().await;
            }
            Err(_) => {
                self.redis_failed("timed out");
                inner.stats.record(inner.name, Outcome::Miss);
                return load().await;
            }
        };
        inner.stats.record(inner.name, Outcome::Miss);
        let loaded = load().await?;
        if let Some(value) = &loaded {
            #[cfg(feature = "testing")]
            hooks::before_fill(&inner.prefix).await;
            let ttl = jittered(inner.settings.ttl);
            let mut fill = inner.fill.key(&generation_key);
            fill.arg(&generation)
                .arg(&prefix)
                .arg(&suffix)
                .arg(value.as_ref())
                .arg(ttl.as_millis() as u64)
                .arg(GENERATION_TTL_MS);
            let fill = fill.invoke_async::<u8>(&mut redis);
            match tokio::time::timeout(inner.settings.redis_timeout, fill).await {
                Ok(Ok(stored)) => {
                    let outcome = match stored {
                        1 => "yes",
                        2 => "first",
                        _ => "stale",
                    };
                    metrics::counter!("cache_fills_total", "cache" => inner.name, "stored" => outcome)
                        .increment(1);
                    if stored != 0 {
                        inner.memory.insert(group, item, value.clone(), epoch);
                    }
                }
                Ok(Err(error)) => self.redis_failed(&error.to_string()),
                Err(_) => self.redis_failed("timed out"),
            }
        }
        Ok(loaded)
    }

    /// Drops every entry of `groups`, here and on every replica. Call after the write
    /// committed. Never fails: an invalidation Redis cannot take now is retried until it can,
    /// and this replica reads around Redis meanwhile.
    pub async fn invalidate(&self, groups: &[String]) {
        if !self.inner.settings.enabled || groups.is_empty() {
            return;
        }
        // Spawned and awaited: a caller that goes away (a request timing out after its write
        // committed) cannot leave the write unannounced.
        let this = self.clone();
        let groups = groups.to_vec();
        let _ = tokio::spawn(async move { this.invalidate_now(&groups).await }).await;
    }

    async fn invalidate_now(&self, groups: &[String]) {
        let inner = &self.inner;
        self.forget_locally(groups);
        metrics::counter!("cache_invalidations_total", "cache" => inner.name)
            .increment(groups.len() as u64);
        let sent = self.send_invalidation(groups).await;
        // Again, now that Redis has moved on: a reader that started between the first
        // forgetting and the new generation may have read the old value from Redis.
        self.forget_locally(groups);
        if let Err(error) = sent {
            self.redis_failed(&error);
            let mut pending = inner.pending.lock().expect("pending lock");
            for group in groups {
                *pending.entry(group.clone()).or_default() += 1;
            }
        }
    }

    async fn send_invalidation(&self, groups: &[String]) -> Result<(), String> {
        let inner = &self.inner;
        let mut redis = inner.redis.clone();
        let mut invocation = inner.invalidate.prepare_invoke();
        for group in groups {
            invocation.key(inner.generation_key(group));
        }
        invocation
            .arg(&inner.channel)
            .arg(groups.join("\n"))
            .arg(GENERATION_TTL_MS);
        match tokio::time::timeout(
            inner.settings.redis_timeout,
            invocation.invoke_async::<u64>(&mut redis),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }

    fn redis_usable(&self) -> bool {
        self.inner.health.usable() && self.inner.pending.lock().expect("pending lock").is_empty()
    }

    fn redis_ok(&self) {
        if self.inner.health.recovered() {
            tracing::info!(
                cache = self.inner.name,
                "cache recovered: Redis answers again"
            );
        }
    }

    fn redis_failed(&self, error: &str) {
        metrics::counter!("cache_redis_errors_total", "cache" => self.inner.name).increment(1);
        if self.inner.health.failed(self.inner.settings.cool_down) {
            tracing::warn!(cache = self.inner.name, %error, "cache unavailable: serving from PostgreSQL until Redis answers");
        }
    }

    /// Keeps the memory layer honest: subscribes to invalidations (memory is trusted only
    /// while subscribed), and retries invalidations that could not reach Redis. Runs until
    /// `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        if !self.inner.settings.enabled {
            return Ok(());
        }
        let mut backoff = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            let subscribed = async {
                let mut pubsub = self.inner.redis.pubsub().await?;
                pubsub.subscribe(&self.inner.channel).await?;
                redis::RedisResult::Ok(pubsub.into_on_message())
            };
            let mut messages = match tokio::time::timeout(Duration::from_secs(2), subscribed).await
            {
                Ok(Ok(messages)) => messages,
                Ok(Err(_)) | Err(_) => {
                    self.retry_pending().await;
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            // Anything may have changed while we were not listening.
            self.inner.memory.enable();
            let mut retry = tokio::time::interval(Duration::from_millis(200));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    message = messages.next() => match message {
                        Some(message) => {
                            let payload: String = message.get_payload().unwrap_or_default();
                            let groups: Vec<String> = payload.split('\n').map(str::to_owned).collect();
                            self.forget_locally(&groups);
                        }
                        None => break,
                    },
                    _ = retry.tick() => self.retry_pending().await,
                }
            }
            self.inner.memory.disable();
        }
        // Last chance for invalidations Redis refused earlier.
        self.retry_pending().await;
        Ok(())
    }

    /// Drops this replica's memory copies of `groups` and detaches loads under way for them,
    /// so a reader arriving after a write never joins a load that began before it.
    fn forget_locally(&self, groups: &[String]) {
        self.inner.memory.invalidate(groups);
        let mut inflight = self.inner.inflight.lock().expect("inflight lock");
        inflight.retain(|key, _| {
            let group = key.split('\n').next().unwrap_or_default();
            !groups.iter().any(|g| g == group)
        });
    }

    async fn retry_pending(&self) {
        let snapshot: Vec<(String, u64)> = self
            .inner
            .pending
            .lock()
            .expect("pending lock")
            .iter()
            .map(|(group, failures)| (group.clone(), *failures))
            .collect();
        if snapshot.is_empty() {
            return;
        }
        let groups: Vec<String> = snapshot.iter().map(|(group, _)| group.clone()).collect();
        if self.send_invalidation(&groups).await.is_ok() {
            let mut pending = self.inner.pending.lock().expect("pending lock");
            for (group, failures) in snapshot {
                // A group that failed again meanwhile stays for the next round.
                if pending.get(&group) == Some(&failures) {
                    pending.remove(&group);
                }
            }
        }
    }

    /// `PING`s the cache's Redis (for `/readyz`).
    pub async fn ping(&self) -> anyhow::Result<()> {
        let mut redis = self.inner.redis.clone();
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(&mut redis);
        tokio::time::timeout(self.inner.settings.redis_timeout, ping)
            .await
            .map_err(|_| anyhow::anyhow!("timed out"))??;
        Ok(())
    }

    /// Whether memory copies are trusted right now (subscribed to invalidations).
    pub fn memory_active(&self) -> bool {
        self.inner.memory.enabled.load(Ordering::Acquire)
    }
}

impl Inner {
    fn generation_key(&self, group: &str) -> String {
        format!("{}gen:{group}", self.prefix)
    }

    /// The value key is `<prefix>v:<group>:<generation>:<item>`; the generation goes between.
    fn value_key_parts(&self, group: &str, item: &str) -> (String, String) {
        (format!("{}v:{group}:", self.prefix), format!(":{item}"))
    }
}

fn jittered(ttl: Duration) -> Duration {
    let factor = 0.9 + rand::random::<f64>() * 0.2;
    ttl.mul_f64(factor).max(Duration::from_millis(1))
}

/// A value in memory and the local epoch its reader started at.
#[derive(Clone)]
struct Stored {
    value: Bytes,
    epoch: u64,
}

/// The per-replica memory layer: a byte-bounded cache of entries that expire after
/// `memory_ttl`, and the recent invalidations that make older entries of a group unreadable.
struct Memory {
    enabled: AtomicBool,
    /// Bumped by every invalidation; an entry is stamped with the epoch its reader started at.
    epoch: AtomicU64,
    entries: moka::sync::Cache<String, Stored>,
    invalidations: RwLock<Invalidations>,
}

/// When each group was last invalidated (the epoch it moved to), kept for
/// [`INVALIDATION_MEMORY`]; `floor` is the newest epoch among forgotten records, so an entry
/// stamped before it is ignored whatever its group.
#[derive(Default)]
struct Invalidations {
    by_group: HashMap<String, (u64, Instant)>,
    floor: u64,
}

impl Invalidations {
    fn newest_for(&self, group: &str) -> u64 {
        self.by_group
            .get(group)
            .map_or(self.floor, |(epoch, _)| (*epoch).max(self.floor))
    }

    fn record(&mut self, group: &str, epoch: u64) {
        if self.by_group.len() >= MAX_INVALIDATION_RECORDS {
            let now = Instant::now();
            let floor = &mut self.floor;
            self.by_group.retain(|_, (epoch, at)| {
                let keep = now.duration_since(*at) < INVALIDATION_MEMORY;
                if !keep {
                    *floor = (*floor).max(*epoch);
                }
                keep
            });
            if self.by_group.len() >= MAX_INVALIDATION_RECORDS {
                self.floor = epoch;
                self.by_group.clear();
            }
        }
        self.by_group
            .insert(group.to_owned(), (epoch, Instant::now()));
    }
}

fn memory_key(group: &str, item: &str) -> String {
    format!("{group}\n{item}")
}

impl Memory {
    fn new(bytes: u64, ttl: Duration) -> Self {
        Memory {
            enabled: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            entries: moka::sync::Cache::builder()
                .max_capacity(bytes)
                .weigher(|key: &String, stored: &Stored| {
                    u32::try_from(key.len() + stored.value.len() + MEMORY_ENTRY_OVERHEAD)
                        .unwrap_or(u32::MAX)
                })
                .time_to_live(ttl)
                .build(),
            invalidations: RwLock::default(),
        }
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn get(&self, group: &str, item: &str) -> Option<Bytes> {
        if !self.enabled.load(Ordering::Acquire) {
            return None;
        }
        let stored = self.entries.get(&memory_key(group, item))?;
        let newest = self
            .invalidations
            .read()
            .expect("invalidations lock")
            .newest_for(group);
        // An entry whose reader started before its group's last invalidation may hold what
        // that invalidation replaced.
        (stored.epoch >= newest).then_some(stored.value)
    }

    /// Keeps a value read by a reader that started at `epoch`; whether it may be served is
    /// decided when it is read (an invalidation of its group since `epoch` hides it).
    fn insert(&self, group: &str, item: &str, value: Bytes, epoch: u64) {
        if !self.enabled.load(Ordering::Acquire) {
            return;
        }
        self.entries
            .insert(memory_key(group, item), Stored { value, epoch });
    }

    fn invalidate(&self, groups: &[String]) {
        let epoch = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        let mut invalidations = self.invalidations.write().expect("invalidations lock");
        for group in groups {
            invalidations.record(group, epoch);
        }
    }

    /// Trusts memory again (subscribed): nothing older than now is believed.
    fn enable(&self) {
        self.forget_everything();
        self.enabled.store(true, Ordering::Release);
    }

    fn disable(&self) {
        self.enabled.store(false, Ordering::Release);
        self.forget_everything();
    }

    fn forget_everything(&self) {
        let epoch = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        let mut invalidations = self.invalidations.write().expect("invalidations lock");
        invalidations.by_group.clear();
        invalidations.floor = epoch;
        drop(invalidations);
        self.entries.invalidate_all();
    }

    /// Bytes the entries weigh now (after pending evictions run).
    #[cfg(test)]
    fn weight(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.weighted_size()
    }
}

enum Outcome {
    MemoryHit,
    RedisHit,
    Miss,
}

/// Hit and miss counts, also kept here to publish the hit ratio as a gauge.
#[derive(Default)]
struct Stats {
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Stats {
    fn record(&self, name: &'static str, outcome: Outcome) {
        let (layer, hit) = match outcome {
            Outcome::MemoryHit => ("memory", true),
            Outcome::RedisHit => ("redis", true),
            Outcome::Miss => ("none", false),
        };
        let (hits, misses) = if hit {
            metrics::counter!("cache_hits_total", "cache" => name, "layer" => layer).increment(1);
            (
                self.hits.fetch_add(1, Ordering::Relaxed) + 1,
                self.misses.load(Ordering::Relaxed),
            )
        } else {
            metrics::counter!("cache_misses_total", "cache" => name).increment(1);
            (
                self.hits.load(Ordering::Relaxed),
                self.misses.fetch_add(1, Ordering::Relaxed) + 1,
            )
        };
        metrics::gauge!("cache_hit_ratio", "cache" => name)
            .set(hits as f64 / (hits + misses) as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(bytes: u64) -> Memory {
        let memory = Memory::new(bytes, Duration::from_secs(60));
        memory.enable();
        memory
    }

    #[test]
    fn the_memory_layer_keeps_to_its_byte_budget() {
        let budget = 1024 * 1024;
        let memory = memory(budget);
        let value = Bytes::from(vec![b'x'; 1024]);
        for n in 0..10_000 {
            memory.insert(&format!("t:{n}"), "", value.clone(), memory.epoch());
        }
        let weight = memory.weight();
        assert!(
            weight <= budget,
            "{weight} bytes kept for a budget of {budget}"
        );
        assert!(weight > budget / 2, "the budget is used: {weight}");
    }

    #[test]
    fn an_entry_read_before_its_groups_invalidation_is_never_served() {
        let memory = memory(1024 * 1024);
        let started = memory.epoch();
        memory.insert("list", "20:-", Bytes::from_static(b"old"), started);
        assert_eq!(memory.get("list", "20:-"), Some(Bytes::from_static(b"old")));
        memory.insert("t:1", "", Bytes::from_static(b"one"), started);

        memory.invalidate(&["list".to_owned()]);

        assert_eq!(memory.get("list", "20:-"), None);
        assert_eq!(
            memory.get("t:1", ""),
            Some(Bytes::from_static(b"one")),
            "other groups stay"
        );
        // A reader that started before the invalidation fills afterwards: ignored.
        memory.insert("list", "20:-", Bytes::from_static(b"stale"), started);
        assert_eq!(memory.get("list", "20:-"), None);
        let fresh = memory.epoch();
        memory.insert("list", "20:-", Bytes::from_static(b"new"), fresh);
        assert_eq!(memory.get("list", "20:-"), Some(Bytes::from_static(b"new")));
    }

    #[test]
    fn while_not_subscribed_memory_is_neither_read_nor_filled() {
        let memory = memory(1024 * 1024);
        memory.insert("t:1", "", Bytes::from_static(b"one"), memory.epoch());
        memory.disable();
        assert_eq!(memory.get("t:1", ""), None);
        memory.insert("t:1", "", Bytes::from_static(b"one"), memory.epoch());
        memory.enable();
        assert_eq!(memory.get("t:1", ""), None, "enabling starts empty");
    }
}

/// Test hooks: pause a reader between its database read and its cache fill, to reproduce the
/// stale-set race deterministically. Pauses are per cache prefix, so parallel tests with their
/// own namespaces do not catch each other's.
#[cfg(feature = "testing")]
pub mod hooks {
    use std::{
        collections::HashMap,
        sync::{Arc, Mutex},
    };

    use tokio::sync::{Notify, oneshot};

    type Pause = (oneshot::Sender<()>, Arc<Notify>);

    static PAUSES: Mutex<Option<HashMap<String, Pause>>> = Mutex::new(None);

    /// Makes the next reader that fills the cache under `prefix` (as given to
    /// `ReadCache::new`) stop before its fill. Returns a receiver that fires once it has
    /// stopped, and the handle that lets it go on.
    pub fn pause_next_fill(prefix: &str) -> (oneshot::Receiver<()>, Arc<Notify>) {
        let (paused, paused_rx) = oneshot::channel();
        let resume = Arc::new(Notify::new());
        PAUSES
            .lock()
            .unwrap()
            .get_or_insert_with(HashMap::new)
            .insert(format!("{prefix}:"), (paused, resume.clone()));
        (paused_rx, resume)
    }

    pub(super) async fn before_fill(prefix: &str) {
        let pause = PAUSES
            .lock()
            .unwrap()
            .as_mut()
            .and_then(|pauses| pauses.remove(prefix));
        if let Some((paused, resume)) = pause {
            let notified = resume.notified();
            let _ = paused.send(());
            notified.await;
        }
    }
}
