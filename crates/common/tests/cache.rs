//! The read cache against the real Redis: stale-set race, stampede, invalidation across
//! replicas, and Redis outages (a closed port, and a Redis of the test's own killed mid-run).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use ticketing_common::{
    CancellationToken,
    cache::{CacheSettings, ReadCache, hooks},
    testing::{OwnRedis, RedisKeys, eventually, free_port, redis_url, unique_namespace},
};

/// A stand-in for the database: a value and a count of reads.
#[derive(Clone, Default)]
struct Source {
    value: Arc<Mutex<String>>,
    reads: Arc<AtomicUsize>,
}

impl Source {
    fn new(value: &str) -> Source {
        let source = Source::default();
        source.set(value);
        source
    }

    fn set(&self, value: &str) {
        *self.value.lock().unwrap() = value.to_owned();
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    /// A loader that reads the current value, slowly enough for requests to pile up.
    fn loader(
        &self,
    ) -> impl FnOnce() -> futures::future::BoxFuture<'static, anyhow::Result<Option<Bytes>>>
    + Send
    + 'static {
        let source = self.clone();
        move || {
            Box::pin(async move {
                source.reads.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(Some(Bytes::from(source.value.lock().unwrap().clone())))
            })
        }
    }
}

struct Running {
    cache: ReadCache,
    prefix: String,
    stop: CancellationToken,
    _keys: RedisKeys,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A cache on a fresh prefix with its upkeep task running (memory layer on once subscribed).
async fn start(url: &str, prefix: &str, settings: CacheSettings) -> Running {
    let cache = ReadCache::new("test", url, prefix, settings).unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(cache.clone().run(stop.clone()));
    Running {
        cache,
        prefix: prefix.to_owned(),
        stop,
        _keys: RedisKeys::new(url, &format!("{prefix}:")),
    }
}

async fn started(url: &str) -> Running {
    let prefix = format!("{}:test", unique_namespace());
    let running = start(url, &prefix, CacheSettings::default()).await;
    let subscribed = eventually(Duration::from_secs(5), || async {
        running.cache.memory_active().then_some(())
    })
    .await;
    assert!(subscribed.is_some(), "subscribed to invalidations");
    running
}

async fn read(cache: &ReadCache, source: &Source) -> String {
    let bytes = cache
        .get_or_load("t:1", "", source.loader())
        .await
        .unwrap()
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn a_read_is_served_from_the_cache_after_the_first_load() {
    let running = started(&redis_url()).await;
    let source = Source::new("v1");

    assert_eq!(read(&running.cache, &source).await, "v1");
    assert_eq!(read(&running.cache, &source).await, "v1");

    assert_eq!(source.reads(), 1);
}

#[tokio::test]
async fn a_reader_paused_between_its_database_read_and_its_fill_cannot_put_back_an_old_value() {
    let running = started(&redis_url()).await;
    let source = Source::new("old");
    let (paused, resume) = hooks::pause_next_fill(&running.prefix);
    let reader = {
        let (cache, source) = (running.cache.clone(), source.clone());
        tokio::spawn(async move { read(&cache, &source).await })
    };
    paused.await.unwrap(); // the reader has loaded "old" and not filled yet

    // A writer commits and invalidates while the reader is paused.
    source.set("new");
    running.cache.invalidate(&["t:1".to_owned()]).await;
    resume.notify_one();
    assert_eq!(
        reader.await.unwrap(),
        "old",
        "the slow reader answers what it read"
    );

    // Neither this replica's memory nor Redis kept the old value.
    assert_eq!(read(&running.cache, &source).await, "new");
    let other = ReadCache::new(
        "test",
        &redis_url(),
        &running.prefix,
        CacheSettings::default(),
    )
    .unwrap();
    let never = Source::new("not from the cache");
    assert_eq!(
        read(&other, &never).await,
        "new",
        "Redis holds the fresh value"
    );
    assert_eq!(never.reads(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_reads_of_a_cold_entry_make_one_database_query() {
    let running = started(&redis_url()).await;
    let source = Source::new("v1");
    let barrier = Arc::new(tokio::sync::Barrier::new(200));

    let readers: Vec<_> = (0..200)
        .map(|_| {
            let (cache, source, barrier) = (running.cache.clone(), source.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                read(&cache, &source).await
            })
        })
        .collect();
    for reader in readers {
        assert_eq!(reader.await.unwrap(), "v1");
    }

    assert_eq!(source.reads(), 1);
}

#[tokio::test]
async fn an_invalidation_on_one_replica_reaches_the_memory_of_another_within_a_second() {
    let prefix = format!("{}:test", unique_namespace());
    let a = start(&redis_url(), &prefix, CacheSettings::default()).await;
    let b = start(
        &redis_url(),
        &prefix,
        CacheSettings {
            memory_ttl: Duration::from_secs(3600),
            ..CacheSettings::default()
        },
    )
    .await;
    for replica in [&a, &b] {
        let on = eventually(Duration::from_secs(5), || async {
            replica.cache.memory_active().then_some(())
        })
        .await;
        assert!(on.is_some());
    }
    let source = Source::new("v1");
    assert_eq!(read(&b.cache, &source).await, "v1"); // now in b's memory (an hour-long memory TTL)
    assert_eq!(read(&b.cache, &source).await, "v1");
    assert_eq!(source.reads(), 1);

    source.set("v2");
    a.cache.invalidate(&["t:1".to_owned()]).await;
    let seen = eventually(Duration::from_secs(1), || async {
        (read(&b.cache, &source).await == "v2").then_some(())
    })
    .await;

    assert!(seen.is_some(), "replica b saw the write within a second");
}

#[tokio::test]
async fn with_redis_at_a_closed_port_reads_and_invalidations_still_succeed() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let running = start(&url, "closed:test", CacheSettings::default()).await;
    let source = Source::new("v1");
    let started = std::time::Instant::now();

    for _ in 0..20 {
        assert_eq!(read(&running.cache, &source).await, "v1");
        running.cache.invalidate(&["t:1".to_owned()]).await;
    }

    assert_eq!(source.reads(), 20, "every read went to the source");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "no read waited long on Redis"
    );
    assert!(
        !running.cache.memory_active(),
        "memory is not trusted without the invalidation channel"
    );
}

#[tokio::test]
async fn when_its_redis_dies_mid_run_the_cache_steps_aside_and_recovers_by_itself() {
    let mut redis = OwnRedis::start(&[]).await;
    let running = started(&redis.url()).await;
    let source = Source::new("v1");
    assert_eq!(read(&running.cache, &source).await, "v1");
    assert_eq!(read(&running.cache, &source).await, "v1");
    assert_eq!(source.reads(), 1);

    redis.kill().await;
    source.set("v2");
    running.cache.invalidate(&["t:1".to_owned()]).await; // a write while Redis is gone
    for _ in 0..10 {
        assert_eq!(
            read(&running.cache, &source).await,
            "v2",
            "reads fall back to the source, fresh"
        );
    }

    redis.restart().await;
    let before = source.reads();
    let cached_again = eventually(Duration::from_secs(10), || async {
        let _ = read(&running.cache, &source).await;
        let reads = source.reads();
        let _ = read(&running.cache, &source).await;
        (source.reads() == reads && running.cache.memory_active()).then_some(())
    })
    .await;

    assert!(
        cached_again.is_some(),
        "the cache serves again without a restart"
    );
    assert!(source.reads() > before);
    assert_eq!(read(&running.cache, &source).await, "v2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_stops_answering_costs_a_read_at_most_a_short_timeout() {
    let redis = OwnRedis::start(&["--enable-debug-command", "yes"]).await;
    let running = started(&redis.url()).await;
    let source = Source::new("v1");
    let url = redis.url();
    // Freeze the server for three seconds from another connection.
    let freezer = tokio::spawn(async move {
        let client = ::redis::Client::open(url).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let _: Result<String, _> = ::redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(3)
            .query_async(&mut conn)
            .await;
    });
    tokio::time::sleep(Duration::from_millis(200)).await; // let the freeze begin
    running.cache.invalidate(&["t:1".to_owned()]).await; // and drop any memory copy

    let started = std::time::Instant::now();
    for _ in 0..5 {
        assert_eq!(read(&running.cache, &source).await, "v1");
    }

    assert!(
        started.elapsed() < Duration::from_secs(2),
        "five reads during a 3 s freeze took {:?}",
        started.elapsed()
    );
    freezer.await.unwrap();
}

/// The keys under a cache's prefix.
async fn keys_of(running: &Running) -> Vec<String> {
    running._keys.list().await
}

#[tokio::test]
async fn looking_up_what_does_not_exist_leaves_no_key_in_redis() {
    let running = started(&redis_url()).await;

    for n in 0..200 {
        let found = running
            .cache
            .get_or_load(&format!("t:{n}"), "", || async { Ok(None) })
            .await
            .unwrap();
        assert!(found.is_none());
    }

    assert_eq!(keys_of(&running).await, Vec::<String>::new());
    // A value found makes its group's generation and its entry (kept a second only, the
    // first time), and is then served from the cache.
    let source = Source::new("v1");
    assert_eq!(read(&running.cache, &source).await, "v1");
    let keys = keys_of(&running).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().any(|k| k.contains(":gen:")), "{keys:?}");
    assert_eq!(read(&running.cache, &source).await, "v1");
    assert_eq!(source.reads(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_reads_not_worth_keeping_share_one_query_and_keep_nothing() {
    let running = started(&redis_url()).await;
    let source = Source::new("page");

    let reads = futures::future::join_all((0..50).map(|_| {
        running
            .cache
            .load_uncached("list", "1000:some-cursor", source.loader())
    }))
    .await;

    assert!(
        reads
            .iter()
            .all(|r| r.as_ref().unwrap().as_deref() == Some(&b"page"[..]))
    );
    assert_eq!(source.reads(), 1, "one query for fifty identical requests");
    assert_eq!(
        keys_of(&running).await,
        Vec::<String>::new(),
        "nothing kept"
    );
    running
        .cache
        .load_uncached("list", "1000:some-cursor", source.loader())
        .await
        .unwrap();
    assert_eq!(source.reads(), 2, "not served from anywhere afterwards");
}

#[tokio::test]
async fn a_full_redis_that_refuses_writes_counts_as_a_transient_failure() {
    let redis = OwnRedis::start(&["--maxmemory", "1mb", "--maxmemory-policy", "noeviction"]).await;
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let big = vec![b'x'; 2 * 1024 * 1024];

    let refused = redis::cmd("SET")
        .arg("big")
        .arg(big)
        .query_async::<()>(&mut conn)
        .await
        .expect_err("a write past maxmemory is refused");

    assert_eq!(refused.code(), Some("OOM"), "{refused}");
    assert!(ticketing_common::error::is_transient(
        &anyhow::Error::new(refused).context("cannot schedule the expiry")
    ));
}
