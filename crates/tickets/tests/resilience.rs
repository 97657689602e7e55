//! The tickets service over HTTP when Redis misbehaves, and across replicas: every read and
//! write succeeds without Redis, and a write on one replica is visible on another within a
//! second.

use std::time::Duration;

use serde_json::{Value, json};
use ticketing_common::{
    cache::CacheSettings,
    testing::{
        OwnRedis, TestBus, TestDb, TestServer, eventually, free_port, redis_url, session_keys,
        unique_namespace,
    },
};
use ticketing_tickets::{Tickets, cache::TicketCache};
use uuid::Uuid;

struct World {
    db: TestDb,
    bus: TestBus,
}

impl World {
    async fn new() -> World {
        let namespace = unique_namespace();
        let db = TestDb::create(&namespace, "tickets").await;
        ticketing_tickets::migrate(&db.pool).await.unwrap();
        let bus = TestBus::create(&namespace).await;
        World { db, bus }
    }

    /// One replica of the tickets service with its cache on `redis`.
    async fn replica(&self, redis: &str) -> TestServer {
        // The replica's own pool: TestDb's pool is the test's.
        let pool = self.db.app_pool(8).await;
        let prefix = self.bus.namespace.redis_prefix().to_owned();
        let cache = TicketCache::new(redis, &prefix, CacheSettings::default()).unwrap();
        let component = ticketing_tickets::component(Tickets { pool, cache }, &self.bus.bus);
        TestServer::start(vec![component], session_keys()).await
    }
}

struct Client {
    http: reqwest::Client,
    cookie: String,
}

impl Client {
    fn new() -> Client {
        let token = session_keys()
            .issue(Uuid::now_v7(), "seller@example.com")
            .unwrap();
        Client {
            http: reqwest::Client::new(),
            cookie: format!("session={token}"),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.header("cookie", &self.cookie).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn create(&self, server: &TestServer, title: &str) -> (u16, Value) {
        self.send(
            self.http
                .post(server.url("/api/tickets"))
                .json(&json!({"title": title, "price": 10})),
        )
        .await
    }

    async fn update(&self, server: &TestServer, id: &str, title: &str) -> (u16, Value) {
        let url = server.url(&format!("/api/tickets/{id}"));
        self.send(
            self.http
                .put(url)
                .json(&json!({"title": title, "price": 12.5})),
        )
        .await
    }

    async fn show(&self, server: &TestServer, id: &str) -> (u16, Value) {
        self.send(self.http.get(server.url(&format!("/api/tickets/{id}"))))
            .await
    }

    async fn list(&self, server: &TestServer) -> (u16, Value) {
        self.send(self.http.get(server.url("/api/tickets"))).await
    }
}

fn titles(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn with_the_cache_at_a_closed_port_every_read_and_write_succeeds() {
    let world = World::new().await;
    let server = world
        .replica(&format!("redis://127.0.0.1:{}", free_port()))
        .await;
    let client = Client::new();

    let (status, ticket) = client.create(&server, "Unreachable cache").await;
    assert_eq!(status, 201);
    let id = ticket["id"].as_str().unwrap();
    assert_eq!(client.show(&server, id).await.0, 200);
    assert_eq!(titles(&client.list(&server).await.1), ["Unreachable cache"]);
    let (status, updated) = client.update(&server, id, "Still fine").await;
    assert_eq!((status, updated["version"].clone()), (200, json!(1)));
    assert_eq!(client.show(&server, id).await.1["title"], "Still fine");
    assert_eq!(titles(&client.list(&server).await.1), ["Still fine"]);
}

#[tokio::test]
async fn when_the_cache_redis_is_stopped_mid_run_reads_and_writes_succeed_and_stay_fresh() {
    let mut redis = OwnRedis::start(&[]).await;
    let world = World::new().await;
    let server = world.replica(&redis.url()).await;
    let client = Client::new();
    let (_, ticket) = client.create(&server, "Before").await;
    let id = ticket["id"].as_str().unwrap().to_owned();
    assert_eq!(client.show(&server, &id).await.1["title"], "Before"); // cached now
    assert_eq!(titles(&client.list(&server).await.1), ["Before"]);

    redis.kill().await;
    let (status, _) = client.update(&server, &id, "During").await;
    assert_eq!(status, 200, "writes succeed without Redis");
    for _ in 0..5 {
        let (status, shown) = client.show(&server, &id).await;
        assert_eq!(
            (status, shown["title"].clone()),
            (200, json!("During")),
            "reads succeed and are fresh"
        );
        assert_eq!(titles(&client.list(&server).await.1), ["During"]);
    }

    redis.restart().await;
    let (status, _) = client.update(&server, &id, "After").await;
    assert_eq!(status, 200);
    let fresh = eventually(Duration::from_secs(5), || async {
        (client.show(&server, &id).await.1["title"] == "After"
            && titles(&client.list(&server).await.1) == ["After"])
        .then_some(())
    })
    .await;
    assert!(fresh.is_some(), "fresh after Redis came back");
}

#[tokio::test]
async fn a_write_on_one_replica_is_visible_on_another_within_a_second() {
    let world = World::new().await;
    let (a, b) = (
        world.replica(&redis_url()).await,
        world.replica(&redis_url()).await,
    );
    let client = Client::new();
    let (_, ticket) = client.create(&a, "Original").await;
    let id = ticket["id"].as_str().unwrap().to_owned();
    // Warm both layers on b.
    let warm = eventually(Duration::from_secs(5), || async {
        (client.show(&b, &id).await.0 == 200 && titles(&client.list(&b).await.1) == ["Original"])
            .then_some(())
    })
    .await;
    assert!(warm.is_some());
    client.show(&b, &id).await;

    let written = std::time::Instant::now();
    assert_eq!(client.update(&a, &id, "Edited on a").await.0, 200);
    let seen = eventually(Duration::from_secs(1), || async {
        (client.show(&b, &id).await.1["title"] == "Edited on a"
            && titles(&client.list(&b).await.1) == ["Edited on a"])
        .then_some(written.elapsed())
    })
    .await;

    assert!(seen.is_some(), "replica b showed the edit within a second");
}
