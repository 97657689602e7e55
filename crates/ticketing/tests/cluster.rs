//! The infrastructure under the services fails, and `ticketing up` (a child process, never
//! restarted) rides through it: a node of a 3-node NATS cluster SIGKILLed in the middle of a
//! burst of orders, the server the process is connected to killed, the queue Redis' master
//! SIGKILLed under Sentinel, and the database server restarted under load. Each test starts
//! the infrastructure it breaks on free loopback ports ([`ticketing_common::testing::cluster`])
//! and uses the shared servers only for the rest.
//!
//! The figures the tests print (publishing's longest stall in the leader election, the
//! expirations' lateness across the Redis failover, the jobs the orders sweep caught) are
//! the ones the README quotes.

mod support;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use reqwest::{Method, StatusCode, header};
use serde_json::json;
use support::{
    Target,
    burst::{all_orders, assert_reserved_then_expired_exactly_once, burst},
    call, list_and_order,
};
use ticketing_common::{
    CancellationToken,
    bus::Bus,
    testing::{
        api::{User, send},
        cluster::{NatsCluster, OwnPostgres, SentinelRedis},
        eventually,
    },
};

/// Orders in the burst through the leader election.
const BURST: usize = 200;
/// The order window of the election test: longer than JetStream's ack wait (events a killed
/// consumer leader had handed out come again after it) plus the burst.
const ELECTION_WINDOW: Duration = Duration::from_secs(25);

/// Lists a ticket as `seller`, then orders it as `buyer` once orders knows it. Returns the
/// order.
/// `Some` once every one of `buyer`'s orders is cancelled.
async fn all_cancelled(target: &Target, buyer: &User) -> Option<()> {
    all_orders(target, buyer)
        .await
        .iter()
        .all(|order| order["status"] == "cancelled")
        .then_some(())
}

/// A counter's value in the process's `/metrics` (0 when it was never recorded).
async fn metric(target: &Target, name: &str) -> f64 {
    let text = target
        .client
        .get(target.url("/metrics"))
        .send()
        .await
        .expect("/metrics")
        .text()
        .await
        .unwrap_or_default();
    text.lines()
        .filter(|line| line.starts_with(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Publishes a probe message through the bus every 20 ms until `stop`, and returns the
/// longest time between two acknowledged publishes: how long publishing stalled.
async fn probe_publishing(bus: Bus, subject: String, stop: CancellationToken) -> Duration {
    let mut last_ack = Instant::now();
    let mut longest = Duration::ZERO;
    while !stop.is_cancelled() {
        let sent = async {
            bus.jetstream()
                .publish(subject.clone(), "probe".into())
                .await?
                .await
        };
        if tokio::time::timeout(Duration::from_secs(5), sent)
            .await
            .is_ok_and(|acked| acked.is_ok())
        {
            longest = longest.max(last_ack.elapsed());
            last_ack = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    longest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_200_orders_rides_through_the_stream_leader_being_killed_and_it_catches_up() {
    let mut cluster = NatsCluster::start(3).await;
    let target = Target::start_with(
        ELECTION_WINDOW,
        &[
            ("NATS_URL", cluster.url()),
            ("JETSTREAM_REPLICAS", "3".to_owned()),
            // The relay says how long it could not publish ("outbox relay recovered").
            (
                "RUST_LOG",
                "warn,ticketing_common::bus::outbox=info".to_owned(),
            ),
        ],
    )
    .await;
    let stream = target.namespace.stream();
    let made = cluster.stream(&stream).await.expect("the stream");
    assert_eq!(made["config"]["num_replicas"], 3, "{made}");

    let probe_bus = Bus::connect_with_replicas(&cluster.url(), &target.namespace, 3)
        .await
        .unwrap();
    let stop_probe = CancellationToken::new();
    let probe = tokio::spawn(probe_publishing(
        probe_bus,
        format!("{}.probe", target.namespace.subject_prefix()),
        stop_probe.clone(),
    ));

    let killed = Arc::new(Mutex::new(None));
    let kill = {
        let (cluster, stream, killed) = (&mut cluster, stream.clone(), killed.clone());
        Box::pin(async move {
            let leader = cluster
                .stream_leader(&stream)
                .await
                .expect("a stream leader");
            cluster.kill(leader).await;
            *killed.lock().unwrap() = Some((leader, Instant::now()));
            vec![format!(
                "nats-server {} (leading the stream)",
                cluster.nodes[leader].name
            )]
        })
    };
    let started = Instant::now();
    let burst = burst(&target, BURST, Some(kill)).await;
    stop_probe.cancel();
    let stall = probe.await.unwrap();
    let (what, accepted_before) = burst.killed.clone().expect("killed mid-burst");
    println!(
        "killed {what:?} after {accepted_before} of {BURST} orders; burst done in {:.1?}; \
         publishing stalled at most {stall:.1?} across the leader election",
        started.elapsed()
    );
    assert!(accepted_before < BURST, "the kill landed mid-burst");
    assert_eq!(
        burst.failed_requests, 0,
        "no order request was answered 5xx or dropped"
    );
    assert_eq!(burst.uncertain, 0);
    assert_reserved_then_expired_exactly_once(&target, &burst).await;
    println!(
        "every order reserved, expired and released once, {:.1?} after the burst began",
        started.elapsed()
    );

    // The node comes back and catches up with what the others stored meanwhile.
    let (node, killed_at) = killed.lock().unwrap().expect("killed");
    cluster.restart(node).await;
    let caught_up = eventually(Duration::from_secs(60), || async {
        let leader = cluster.stream(&stream).await?;
        let last = leader["state"]["last_seq"].as_u64()?;
        let own = cluster.local_state(node, &stream).await?;
        (own["last_seq"].as_u64()? == last && own["messages"] == leader["state"]["messages"])
            .then_some(last)
    })
    .await;
    assert!(
        caught_up.is_some(),
        "{} caught up with the stream (logs in {})",
        cluster.nodes[node].name,
        cluster.log_dir().display()
    );
    println!(
        "{} back and caught up ({} messages) {:.1?} after it was killed",
        cluster.nodes[node].name,
        caught_up.unwrap(),
        killed_at.elapsed()
    );
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_given_three_servers_moves_to_another_when_its_own_is_killed() {
    let mut cluster = NatsCluster::start(3).await;
    let target = Target::start_with(
        Duration::from_secs(3),
        &[
            ("NATS_URL", cluster.url()),
            ("JETSTREAM_REPLICAS", "3".to_owned()),
        ],
    )
    .await;
    let name = format!("ticketing[{}]", target.pid().await.expect("its pid"));
    let serving = eventually(Duration::from_secs(10), || async {
        let nodes = cluster.nodes_serving(&name).await;
        (nodes.len() == 1).then(|| nodes[0])
    })
    .await
    .expect("the process is connected to one node");

    cluster.kill(serving).await;
    let killed_at = Instant::now();
    let moved = eventually(Duration::from_secs(20), || async {
        let nodes = cluster.nodes_serving(&name).await;
        nodes.first().copied()
    })
    .await;
    assert!(
        moved.is_some_and(|node| node != serving),
        "the process reconnected to another server"
    );
    println!(
        "{} killed; the process was on {} {:.1?} later",
        cluster.nodes[serving].name,
        cluster.nodes[moved.unwrap()].name,
        killed_at.elapsed()
    );

    // And it works there: a ticket is listed, ordered, and the unpaid order expires, which
    // takes events published and consumed by every service.
    let buyer = target.user();
    list_and_order(&target, &target.user(), &buyer, "Cluster seat").await;
    let expired = eventually(Duration::from_secs(40), || all_cancelled(&target, &buyer)).await;
    assert!(
        expired.is_some(),
        "the order expired through the new server"
    );
    let ready = call(&target, Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpaid_orders_still_expire_when_the_queue_redis_master_dies_and_sentinel_promotes_its_replica()
 {
    const ORDERS: usize = 30;
    let window = Duration::from_secs(8);
    let grace = Duration::from_secs(5);
    let mut redis = SentinelRedis::start().await;
    let target = Target::start_with(
        window,
        &[
            ("REDIS_QUEUE_URL", redis.url()),
            (
                "EXPIRATION_SWEEP_GRACE_SECONDS",
                grace.as_secs().to_string(),
            ),
            ("EXPIRATION_SWEEP_INTERVAL_SECONDS", "1".to_owned()),
        ],
    )
    .await;
    let seller = target.user();
    let buyer = target.user();
    let orders = futures::future::join_all(
        (0..ORDERS).map(|_| list_and_order(&target, &seller, &buyer, "Cluster seat")),
    )
    .await;
    let first_due = orders
        .iter()
        .map(|(_, o)| {
            time::OffsetDateTime::parse(
                o["expiresAt"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap()
        })
        .min()
        .unwrap();
    // Every job is on the master (maybe not yet on the replica) when it dies.
    let due_key = format!("{}:expiration:due", target.namespace.redis_prefix());
    let master = redis::Client::open(redis.node_url(0)).unwrap();
    let scheduled = eventually(Duration::from_secs(20), || async {
        let mut conn = master.get_multiplexed_async_connection().await.ok()?;
        let due: usize = redis::cmd("ZCARD")
            .arg(&due_key)
            .query_async(&mut conn)
            .await
            .ok()?;
        (due == ORDERS).then_some(())
    })
    .await;
    assert!(scheduled.is_some(), "every job scheduled on the master");
    let swept_before = metric(&target, "orders_swept_total").await;

    // The master dies half a second before the first job is due, so the jobs come due
    // while the sentinels fail over: their lateness is the expirations' stall.
    let until_due = first_due - time::OffsetDateTime::now_utc() - time::Duration::milliseconds(500);
    if until_due.is_positive() {
        tokio::time::sleep(until_due.unsigned_abs()).await;
    }
    redis.kill(0).await;
    let killed_at = Instant::now();
    let promoted = eventually(Duration::from_secs(30), || async {
        (redis.master_port().await? == redis.ports[1]).then_some(())
    })
    .await;
    assert!(promoted.is_some(), "the sentinels promoted the replica");
    println!(
        "queue master killed; the sentinels named the replica {:.1?} later",
        killed_at.elapsed()
    );

    let patience = window + grace + Duration::from_secs(30);
    let expired = eventually(patience, || all_cancelled(&target, &buyer)).await;
    assert!(
        expired.is_some(),
        "every unpaid order expired, within the sweep's grace at worst"
    );
    let swept = metric(&target, "orders_swept_total").await - swept_before;
    // The lateness the expiration queue recorded (on the new master): how long the
    // expirations stalled across the failover.
    let queue = call(
        &target,
        Method::GET,
        "/api/queues/expiration",
        Some(&target.operator()),
        None,
    )
    .await;
    assert_eq!(queue.status, StatusCode::OK, "{}", queue.text);
    let lateness = &queue.json()["lateness"];
    println!(
        "{ORDERS} orders expired {:.1?} after the kill; the sweep caught {swept} whose job was lost; \
         the expiration queue's lateness since the failover: p50 {} ms, max {} ms",
        killed_at.elapsed(),
        lateness["p50Ms"],
        lateness["maxMs"]
    );
    // The worker follows the new master by itself: jobs scheduled now fire there.
    let late_buyer = target.user();
    list_and_order(&target, &seller, &late_buyer, "Cluster seat").await;
    let fired = eventually(window + Duration::from_secs(15), || async {
        let fired = metric(&target, "expiration_jobs_fired_total").await;
        all_cancelled(&target, &late_buyer).await.map(|()| fired)
    })
    .await;
    assert!(fired.is_some(), "a job scheduled after the failover fires");
    assert_eq!(
        metric(&target, "orders_swept_total").await - swept_before,
        swept,
        "the order placed after the failover expired through its job, not the sweep"
    );
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restarted_under_load_answers_every_request_without_a_500_and_recovers() {
    let pg = OwnPostgres::start()
        .await
        .expect("PostgreSQL's server binaries (scripts/services.sh installs them)");
    let target = Target::start_with(
        Duration::from_secs(60),
        &[
            ("DATABASE_URL", pg.url()),
            // Requests wait for a connection at most this long, then 503.
            ("DATABASE_POOL_SIZE", "6".to_owned()),
        ],
    )
    .await;
    let seller = target.user();
    let stop = CancellationToken::new();
    // Four clients listing tickets (tickets' database) and reading their orders (orders'
    // database), until told to stop.
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (client, base, seller, stop) = (
                target.client.clone(),
                target.base.clone(),
                seller.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut answers: Vec<(StatusCode, bool)> = Vec::new();
                let mut created: Vec<String> = Vec::new();
                while !stop.is_cancelled() {
                    let reply = send(
                        &client,
                        Method::POST,
                        format!("{base}/api/tickets"),
                        Some(&seller),
                        Some((
                            Some("application/json"),
                            json!({"title": "Restart", "price": 5}).to_string(),
                        )),
                    )
                    .await;
                    let retry_after = reply.headers.contains_key(header::RETRY_AFTER);
                    answers.push((reply.status, retry_after));
                    if reply.status == StatusCode::CREATED {
                        created.push(reply.json()["id"].as_str().unwrap().to_owned());
                    }
                    let read = send(
                        &client,
                        Method::GET,
                        format!("{base}/api/orders"),
                        Some(&seller),
                        None,
                    )
                    .await;
                    answers.push((read.status, read.headers.contains_key(header::RETRY_AFTER)));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                (answers, created)
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(2)).await; // load before the outage
    pg.stop_immediately();
    let stopped_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await; // the outage itself
    pg.start_server().await;
    let recovered = eventually(Duration::from_secs(30), || async {
        let reply = call(
            &target,
            Method::POST,
            "/api/tickets",
            Some(&seller),
            Some(json!({"title": "After", "price": 5})),
        )
        .await;
        (reply.status == StatusCode::CREATED).then(|| stopped_at.elapsed())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await; // load after the recovery
    stop.cancel();
    let mut answers = Vec::new();
    let mut created = Vec::new();
    for task in load {
        let (a, c) = task.await.unwrap();
        answers.extend(a);
        created.extend(c);
    }

    let unavailable = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    let bad: Vec<_> = answers
        .iter()
        .filter(|(status, retry_after)| {
            (status.is_server_error() && *status != StatusCode::SERVICE_UNAVAILABLE)
                || (*status == StatusCode::SERVICE_UNAVAILABLE && !retry_after)
                || !(status.is_success() || status.is_server_error())
        })
        .collect();
    println!(
        "{} requests under the restart: {unavailable} answered 503 with Retry-After, the rest 2xx; \
         writes succeeded again {:.1?} after the server stopped",
        answers.len(),
        recovered.unwrap_or_default()
    );
    assert!(
        bad.is_empty(),
        "every request answered 2xx or 503 with Retry-After, never a 500: {:?}",
        &bad[..bad.len().min(5)]
    );
    assert!(recovered.is_some(), "the pools recovered without a restart");
    // Nothing committed was lost: every ticket answered 201 is there.
    for id in &created {
        let reply = call(
            &target,
            Method::GET,
            &format!("/api/tickets/{id}"),
            None,
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "ticket {id}: {}", reply.text);
    }
    target.stop().await;
}
