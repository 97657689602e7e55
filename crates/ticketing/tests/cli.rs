//! The `ticketing` binary as a user runs it: `up` with zero configuration, clear one-line
//! errors for missing dependencies, `serve` refusing to start without a key, and a clean exit
//! on SIGTERM.

mod support;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use futures::StreamExt;
use support::drop_namespace;
use ticketing_common::testing::unique_namespace;

const BIN: &str = env!("CARGO_BIN_EXE_ticketing");

fn ticketing(namespace: &str) -> Command {
    let mut command = Command::new(BIN);
    command
        .env_remove("JWT_KEY")
        .env("TICKETING_NAMESPACE", namespace)
        .env("TICKETING_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A started `ticketing` process, killed if the test ends without stopping it (a failed
/// assertion), so no failure leaves a server running.
struct Running(Child);

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

trait Start {
    fn start(&mut self) -> Running;
}

impl Start for Command {
    fn start(&mut self) -> Running {
        Running(self.spawn().expect("the ticketing binary starts"))
    }
}

/// Waits for the line announcing the URL; returns it.
fn wait_for_url(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("Ticketing is up at ") {
                let _ = tx.send(
                    rest.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("`up` printed its URL")
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[tokio::test]
async fn up_with_zero_configuration_serves_the_api_and_stops_cleanly_on_sigterm() {
    let namespace = unique_namespace().to_string();
    let mut child = ticketing(&namespace).arg("up").start();
    let url = wait_for_url(&mut child);
    let client = reqwest::Client::new();

    let signup = client
        .post(format!("{url}api/users/signup"))
        .json(&serde_json::json!({"email": "up@example.com", "password": "s3cret"}))
        .send()
        .await
        .unwrap();
    let ready = client.get(format!("{url}readyz")).send().await.unwrap();
    let home = client.get(&url).send().await.unwrap();
    let home_type = home.headers()["content-type"].to_str().unwrap().to_owned();
    let home_page = home.text().await.unwrap();
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(20));
    let refused = client.get(format!("{url}healthz")).send().await;
    drop_namespace(&namespace).await;

    assert_eq!(signup.status(), 201);
    let cookie = signup.headers()["set-cookie"].to_str().unwrap();
    assert!(
        !cookie.contains("Secure"),
        "loopback development drops Secure: {cookie}"
    );
    assert_eq!(ready.status(), 200);
    assert!(
        home_type.starts_with("text/html"),
        "the web UI at / ({home_type})"
    );
    assert!(
        home_page.contains("Ticketing"),
        "the home page: {home_page}"
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "exit status {status:?}"
    );
    assert!(refused.is_err(), "no longer taking requests");
}

#[test]
fn a_missing_dependency_is_one_clear_line_naming_it_and_where_it_looked() {
    let namespace = unique_namespace().to_string();
    let output = ticketing(&namespace)
        .env("NATS_URL", "nats://127.0.0.1:1")
        .arg("up")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success());
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line, no stack trace: {stderr}");
    assert!(
        lines[0].contains("NATS is not reachable at nats://127.0.0.1:1"),
        "{stderr}"
    );
    assert!(
        lines[0].contains("scripts/services.sh"),
        "says how to start it: {stderr}"
    );

    let output = ticketing(&namespace)
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/postgres")
        .env("JWT_KEY", "0123456789abcdef0123456789abcdef")
        .args(["serve", "auth"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("PostgreSQL is not reachable at postgres://postgres@127.0.0.1:1/postgres"),
        "{stderr}"
    );
}

#[test]
fn serve_refuses_to_start_without_a_session_key_and_up_warns_when_it_makes_one() {
    let namespace = unique_namespace().to_string();
    let output = ticketing(&namespace)
        .args(["serve", "auth"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success());
    assert!(stderr.contains("JWT_KEY is not set"), "{stderr}");

    let output = ticketing(&namespace)
        .env("JWT_KEY", "too short")
        .args(["serve", "auth"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("at least 32 bytes"));
}

/// `serve payments` with `env`: its exit status and stderr, if it refused to start.
fn serve_payments_refusal(env: &[(&str, &str)]) -> String {
    let namespace = unique_namespace().to_string();
    let mut command = ticketing(&namespace);
    command
        .env("JWT_KEY", "0123456789abcdef0123456789abcdef")
        .env_remove("PAYMENTS_PROVIDER")
        .env_remove("STRIPE_SECRET_KEY")
        .env_remove("STRIPE_WEBHOOK_SECRET")
        .args(["serve", "payments"]);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.start();
    let status = wait_exit(&mut child, Duration::from_secs(30));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("serve payments started with {env:?}");
    }
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.unwrap().success(), "{env:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line for {env:?}: {stderr}");
    stderr
}

#[test]
fn serve_payments_refuses_an_undeclared_provider_an_empty_webhook_secret_and_a_contradiction() {
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[], "PAYMENTS_PROVIDER is not set"),
        // An empty variable is unset: an empty key selects nothing, so nothing is declared.
        (&[("STRIPE_SECRET_KEY", "")], "PAYMENTS_PROVIDER is not set"),
        (
            &[
                ("STRIPE_SECRET_KEY", "sk_test_123"),
                ("STRIPE_WEBHOOK_SECRET", ""),
            ],
            "STRIPE_WEBHOOK_SECRET",
        ),
        (
            &[("STRIPE_SECRET_KEY", "sk_test_123")],
            "STRIPE_WEBHOOK_SECRET",
        ),
        (
            &[
                ("STRIPE_SECRET_KEY", "sk_test_123"),
                ("STRIPE_WEBHOOK_SECRET", "hunter2"),
            ],
            "STRIPE_WEBHOOK_SECRET",
        ),
        (
            &[
                ("PAYMENTS_PROVIDER", "development"),
                ("STRIPE_SECRET_KEY", "sk_test_123"),
                ("STRIPE_WEBHOOK_SECRET", "whsec_123"),
            ],
            "STRIPE_SECRET_KEY is set",
        ),
    ];
    for (env, expected) in cases {
        let stderr = serve_payments_refusal(env);
        assert!(stderr.contains(expected), "{env:?}: {stderr}");
        assert!(
            !stderr.contains("hunter2"),
            "a secret in the message: {stderr}"
        );
    }
}

#[tokio::test]
async fn an_empty_stripe_key_counts_as_unset_beside_a_declared_development_provider() {
    let namespace = unique_namespace().to_string();
    let mut child = ticketing(&namespace)
        .env("JWT_KEY", "0123456789abcdef0123456789abcdef")
        .env("PAYMENTS_PROVIDER", "development")
        .env("STRIPE_SECRET_KEY", "")
        .env("STRIPE_WEBHOOK_SECRET", "")
        .args(["serve", "payments"])
        .start();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("Ticketing payments is serving on ") {
                let _ = tx.send(());
            }
        }
    });
    let started = rx.recv_timeout(Duration::from_secs(60));
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(20));
    drop_namespace(&namespace).await;
    assert!(started.is_ok(), "serve payments did not start");
    assert!(status.is_some_and(|s| s.success()));
}

#[test]
fn start_up_errors_never_show_a_password_in_a_url() {
    let namespace = unique_namespace().to_string();
    let output = ticketing(&namespace)
        .env("NATS_URL", "nats://app:hunter2@127.0.0.1:1")
        .arg("up")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("nats://app:***@127.0.0.1:1"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[tokio::test]
async fn sessions_last_session_ttl_seconds() {
    let namespace = unique_namespace().to_string();
    let mut child = ticketing(&namespace)
        .env("SESSION_TTL_SECONDS", "120")
        .arg("up")
        .start();
    let url = wait_for_url(&mut child);
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let signup = client
        .post(format!("{url}api/users/signup"))
        .json(&serde_json::json!({"email": "ttl@example.com", "password": "s3cret"}))
        .send()
        .await
        .unwrap();
    let cookie = signup.headers()["set-cookie"].to_str().unwrap().to_owned();
    let current: serde_json::Value = client
        .get(format!("{url}api/users/currentuser"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(20));
    drop_namespace(&namespace).await;

    assert!(cookie.contains("Max-Age=120"), "{cookie}");
    let user = &current["currentUser"];
    assert_eq!(
        user["exp"].as_i64().unwrap() - user["iat"].as_i64().unwrap(),
        120
    );
}

#[test]
fn help_lists_the_settings_operators_rely_on() {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for variable in [
        "TICKETING_NAMESPACE",
        "DATABASE_URL",
        "NATS_URL",
        "REDIS_URL",
        "JWT_KEY",
        "RATE_LIMIT_PER_MINUTE",
        "PAYMENTS_PROVIDER",
        "SESSION_TTL_SECONDS",
        "MAX_LIVE_ORDERS_PER_USER",
        "TRUSTED_PROXIES",
        "REDIS_QUEUE_URL",
        "CACHE_MEMORY_BYTES",
        "HTTP_HEADER_TIMEOUT_SECONDS",
        "HTTP_REQUEST_TIMEOUT_SECONDS",
        "HTTP_MAX_CONNECTIONS",
    ] {
        assert!(help.contains(variable), "--help lacks {variable}");
    }
    // Values that may carry credentials are never echoed.
    let secret = "hunter2-in-a-url";
    let output = Command::new(BIN)
        .arg("--help")
        .env(
            "DATABASE_URL",
            format!("postgres://app:{secret}@db/postgres"),
        )
        .env(
            "ORDERS_DATABASE_URL",
            format!("postgres://app:{secret}@db/orders"),
        )
        .env("REDIS_QUEUE_URL", format!("redis://:{secret}@queue:6379"))
        .env("NATS_URL", format!("nats://app:{secret}@nats:4222"))
        .env("JWT_KEY", secret)
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(!help.contains(secret), "--help shows a secret: {help}");
    let up = Command::new(BIN).args(["up", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&up.stdout).contains("TICKETING_ADDR"));
}

/// Starts `serve <component>` and returns the child and the URL it printed.
fn serve(namespace: &str, component: &str) -> (Running, String) {
    let mut child = ticketing(namespace)
        .env("JWT_KEY", "0123456789abcdef0123456789abcdef")
        .env("TICKETING_API_BASE", "http://127.0.0.1:9")
        .env("PAYMENTS_PROVIDER", "development")
        .args(["serve", component])
        .start();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let announce = format!("Ticketing {component} is serving on ");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix(&announce) {
                let _ = tx.send(rest.trim().to_owned());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("`serve {component}` printed its URL"));
    (child, url)
}

#[tokio::test]
async fn serve_runs_each_component_alone() {
    let client = reqwest::Client::new();
    // (component, a route only it serves, a route of another component)
    for (component, own_route, foreign_route) in [
        ("auth", "api/users/currentuser", "api/tickets"),
        ("tickets", "api/tickets", "api/users/currentuser"),
        ("orders", "api/openapi.json", "api/users/currentuser"),
        ("expiration", "readyz", "api/users/currentuser"),
        ("payments", "api/openapi.json", "api/users/currentuser"),
        ("web", "signin", "api/users/currentuser"),
    ] {
        let namespace = unique_namespace().to_string();
        let (mut child, url) = serve(&namespace, component);

        let get = |path: &str| client.get(format!("{url}{path}")).send();
        let own = get(own_route).await.unwrap();
        let health = get("healthz").await.unwrap();
        let ready = get("readyz").await.unwrap();
        let metrics = get("metrics").await.unwrap();
        let metrics_type = metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let foreign = get(foreign_route).await.unwrap();
        sigterm(&child);
        let status = wait_exit(&mut child, Duration::from_secs(20));
        drop_namespace(&namespace).await;

        assert_eq!(own.status(), 200, "{component} serves {own_route}");
        assert_eq!(health.status(), 200, "{component} /healthz");
        assert_eq!(ready.status(), 200, "{component} is ready alone");
        assert_eq!(metrics.status(), 200, "{component} /metrics");
        assert!(
            metrics_type.starts_with("text/plain"),
            "{component} /metrics: {metrics_type}"
        );
        assert_eq!(
            foreign.status(),
            404,
            "{foreign_route} is not part of the {component} process"
        );
        assert!(
            status.is_some_and(|s| s.success()),
            "{component} exit status {status:?}"
        );
    }
}

/// The resident memory of a process, in bytes (`VmRSS` of `/proc/<pid>/status`).
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// `used_memory` and the number of keys of a Redis.
async fn redis_footprint(url: &str) -> (u64, u64) {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await
        .unwrap();
    let used = info
        .lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("used_memory");
    let keys: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
    (used, keys)
}

/// The path of the `n`th read of a flood: lists with arbitrary sizes and cursors, tickets by
/// arbitrary id, and the first pages ordinary clients ask for.
fn flood_path(n: u64) -> String {
    let id = uuid::Uuid::new_v4();
    match n % 4 {
        0 => format!("api/tickets?limit={}&before={id}", 1 + n % 1000),
        1 => format!("api/tickets/{id}"),
        2 => format!("api/tickets?limit={}", 1 + n % 1000),
        _ => format!("api/ticket?limit={}&before={id}", 1 + (n * 7) % 1000),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_distinct_anonymous_reads_stay_within_the_memory_and_key_budgets() {
    // A Redis of its own, so its memory and keys are this test's alone.
    let redis = ticketing_common::testing::OwnRedis::start(&[]).await;
    let namespace = unique_namespace().to_string();
    let mut child = ticketing(&namespace)
        .env("REDIS_URL", redis.url())
        .env("RATE_LIMIT_PER_MINUTE", "0")
        .env("JWT_KEY", "0123456789abcdef0123456789abcdef")
        .arg("up")
        .start();
    let url = wait_for_url(&mut child);
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    http.post(format!("{url}api/users/signup"))
        .json(&serde_json::json!({"email": "seller@example.com", "password": "s3cret"}))
        .send()
        .await
        .unwrap();
    for n in 0..50 {
        let listed = http
            .post(format!("{url}api/tickets"))
            .json(&serde_json::json!({"title": format!("Show {n}"), "price": 10}))
            .send()
            .await
            .unwrap();
        assert_eq!(listed.status(), 201);
    }
    let read = |paths: Vec<String>| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            futures::stream::iter(paths)
                .map(|path| {
                    let (http, url) = (http.clone(), url.clone());
                    async move {
                        let reply = http.get(format!("{url}{path}")).send().await.unwrap();
                        assert!(
                            !reply.status().is_server_error(),
                            "{path}: {}",
                            reply.status()
                        );
                        let _ = reply.bytes().await;
                    }
                })
                .buffer_unordered(32)
                .collect::<Vec<()>>()
                .await
        }
    };
    // Warm up: every kind of read, so what is measured is growth, not first use.
    read((0..400).map(flood_path).collect()).await;
    let (rss_before, (redis_before, keys_before)) =
        (rss(child.id()), redis_footprint(&redis.url()).await);

    read((400..5_400).map(flood_path).collect()).await;

    let (rss_after, (redis_after, keys_after)) =
        (rss(child.id()), redis_footprint(&redis.url()).await);
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(20));
    drop_namespace(&namespace).await;
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let rss_growth = rss_after.saturating_sub(rss_before);
    let redis_growth = redis_after.saturating_sub(redis_before);
    eprintln!(
        "5,000 distinct anonymous reads: process RSS {:.1} -> {:.1} MiB (+{:.1}), Redis used_memory {:.1} -> {:.1} MiB (+{:.1}), keys {keys_before} -> {keys_after}",
        mib(rss_before),
        mib(rss_after),
        mib(rss_growth),
        mib(redis_before),
        mib(redis_after),
        mib(redis_growth),
    );
    assert!(
        rss_growth <= 64 << 20,
        "the process grew {:.1} MiB",
        mib(rss_growth)
    );
    assert!(
        redis_growth <= 64 << 20,
        "Redis grew {:.1} MiB",
        mib(redis_growth)
    );
    assert!(
        keys_after.saturating_sub(keys_before) <= 300,
        "Redis keys {keys_before} -> {keys_after}"
    );
}

/// Runs `ticketing events <args>` on a namespace; its exit status and output.
fn events(namespace: &str, args: &[&str]) -> (bool, String) {
    let output = ticketing(namespace)
        .env("JWT_KEY", "0123456789abcdef0123456789abcdef")
        .arg("events")
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn parked_events_are_listed_and_replayed_through_the_handler_that_parked_them() {
    use ticketing_common::{
        bus::parked::{ParkedEvent, Parking},
        db::DatabaseTarget,
        testing::{database_url, eventually, nats_url},
    };
    let namespace = unique_namespace().to_string();
    let mut child = ticketing(&namespace).arg("up").start();
    wait_for_url(&mut child);
    // Something orders can never read arrives: it is parked, not dropped.
    let nats = async_nats::connect(nats_url()).await.unwrap();
    let jetstream = async_nats::jetstream::new(nats);
    jetstream
        .publish(format!("{namespace}.payment.created"), "not json".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let orders_db = DatabaseTarget::resolve(&database_url(), None, &format!("{namespace}_orders"))
        .unwrap()
        .connect(2)
        .await
        .unwrap();
    let parking = Parking::Postgres(orders_db.clone());
    let garbage = eventually(Duration::from_secs(15), || async {
        parking.list().await.unwrap().into_iter().next()
    })
    .await
    .expect("the unreadable event was parked");
    // And an event parked earlier that can apply now (its cause was fixed).
    let ticket = uuid::Uuid::now_v7();
    let envelope = ticketing_events::Envelope::new(ticketing_events::TicketCreated {
        id: ticket,
        version: 0,
        title: "Replayed".into(),
        price: ticketing_events::Cents(500),
        user_id: uuid::Uuid::now_v7(),
    });
    let fixable = ParkedEvent {
        id: uuid::Uuid::now_v7(),
        service: "orders".into(),
        subject: "ticket.created".into(),
        event_id: Some(envelope.id),
        payload: serde_json::to_vec(&envelope).unwrap(),
        error: "failed 5 times: a bug since fixed".into(),
        deliveries: 5,
        parked_at: time::OffsetDateTime::now_utc(),
        replays: 0,
    };
    parking.park(&fixable).await.unwrap();

    let (listed_ok, listed) = events(&namespace, &["parked"]);
    let (one_ok, one) = events(&namespace, &["replay", &fixable.id.to_string()]);
    let known: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tickets WHERE id = $1)")
        .bind(ticket)
        .fetch_one(&orders_db)
        .await
        .unwrap();
    let (all_ok, all) = events(&namespace, &["replay", "--all"]);
    let left = parking.list().await.unwrap();
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(20));
    orders_db.close().await;
    drop_namespace(&namespace).await;

    assert!(listed_ok, "{listed}");
    for id in [garbage.id, fixable.id] {
        assert!(
            listed.contains(&id.to_string()),
            "{id} not listed: {listed}"
        );
    }
    assert!(
        listed.contains("payment.created") && listed.contains("undecodable"),
        "{listed}"
    );
    assert!(
        one_ok && one.contains(&format!("applied   {}", fixable.id)),
        "{one}"
    );
    assert!(known, "the replayed ticket.created reached orders' replica");
    assert!(
        !all_ok,
        "an event that still cannot apply fails the command: {all}"
    );
    assert!(all.contains(&format!("refused   {}", garbage.id)), "{all}");
    assert_eq!(left.iter().map(|e| e.id).collect::<Vec<_>>(), [garbage.id]);
    assert_eq!(left[0].replays, 1);
}

#[tokio::test]
async fn listing_parked_events_in_a_namespace_where_nothing_ran_says_so_and_creates_nothing() {
    use ticketing_common::{db::DatabaseTarget, testing::database_url};
    let namespace = unique_namespace().to_string();

    let (ok, output) = events(&namespace, &["parked"]);

    assert!(
        !ok,
        "a mistyped namespace is not 'no parked events': {output}"
    );
    assert!(
        output.contains(&format!("has anything run in namespace {namespace}")),
        "{output}"
    );
    let admin = DatabaseTarget::resolve(&database_url(), None, "postgres")
        .unwrap()
        .open(1)
        .await
        .unwrap();
    let created: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname LIKE $1 || '\\_%'")
            .bind(&namespace)
            .fetch_one(&admin)
            .await
            .unwrap();
    assert_eq!(created, 0, "no database was made for {namespace}");
}

/// Runs `ticketing queue <args>` on a namespace; its exit status and output.
fn queue_command(namespace: &str, args: &[&str]) -> (bool, String) {
    let output = ticketing(namespace)
        .arg("queue")
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn operators_see_the_queue_and_retry_promote_and_discard_its_jobs_from_a_shell() {
    use ticketing_common::testing::{RedisKeys, redis_url};
    use ticketing_expiration::{
        queue::{Queue, Retried},
        worker::now_ms,
    };
    let namespace = unique_namespace();
    let _keys = RedisKeys::of(&redis_url(), &namespace);
    let queue = Queue::connect(
        &redis_url(),
        namespace.redis_prefix(),
        Duration::from_secs(30),
    )
    .await
    .unwrap()
    .with_retries(1, Duration::from_millis(1));
    // This process plays the workers: one job fired 2 s late, one failed, one waits.
    let fired = uuid::Uuid::now_v7();
    queue.enqueue(fired, now_ms() - 2_000).await.unwrap();
    let claimed = queue.claim("worker", 1).await.unwrap().jobs.remove(0);
    assert!(queue.ack(&claimed).await.unwrap());
    let failed = uuid::Uuid::now_v7();
    queue.enqueue(failed, now_ms()).await.unwrap();
    let claimed = queue.claim("worker", 1).await.unwrap().jobs.remove(0);
    assert_eq!(
        queue.retry(&claimed, "NATS said no\nat all").await.unwrap(),
        Retried::Dead
    );
    let delayed = uuid::Uuid::now_v7();
    queue.enqueue(delayed, now_ms() + 3_600_000).await.unwrap();
    let ns = namespace.as_str();
    let (failed_id, delayed_id) = (failed.to_string(), delayed.to_string());

    let (stats_ok, stats) = queue_command(ns, &["stats"]);
    let (listed_ok, listed) = queue_command(ns, &["jobs", "--state", "failed"]);
    let (_, waiting) = queue_command(ns, &["jobs", "--state", "delayed", "--limit", "1"]);
    let (retried_ok, retried) = queue_command(ns, &["retry", &failed_id]);
    let (again_ok, again) = queue_command(ns, &["retry", &failed_id]);
    let (promoted_ok, promoted) = queue_command(ns, &["promote", &delayed_id]);
    let (discard_ok, discard) = queue_command(ns, &["discard", &delayed_id]);
    let unknown = uuid::Uuid::now_v7().to_string();
    let (unknown_ok, unknown_said) = queue_command(ns, &["retry", &unknown]);
    let (bad_state_ok, bad_state) = queue_command(ns, &["jobs", "--state", "done"]);
    let actions = queue.action_log().latest(10).await.unwrap();
    let after = queue.counts().await.unwrap();

    assert!(stats_ok, "{stats}");
    assert!(
        stats.contains("delayed 1  active 0  failed 1  completed 1"),
        "{stats}"
    );
    let max: u64 = stats
        .split("max ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no max lateness: {stats}"));
    assert!(
        (2_000..10_000).contains(&max),
        "the job fired by this process, 2 s late, as the CLI's process reads it: {stats}"
    );
    assert!(listed_ok, "{listed}");
    assert_eq!(listed.lines().count(), 1, "one line per job: {listed}");
    assert!(
        listed.contains(&failed_id)
            && listed.contains("attempts 1")
            && listed.contains("error: NATS said no at all"),
        "{listed}"
    );
    assert!(
        waiting.contains(&delayed_id) && !waiting.contains(&failed_id),
        "{waiting}"
    );
    assert!(
        retried_ok && retried.starts_with(&format!("retried {failed_id}: due ")),
        "{retried}"
    );
    assert!(!again_ok, "{again}");
    assert_eq!(
        again.trim(),
        format!(
            "error: job {failed_id}: Only a failed job can be retried: this job is delayed (waiting for its due time)"
        )
    );
    assert!(
        promoted_ok && promoted.starts_with(&format!("promoted {delayed_id}")),
        "{promoted}"
    );
    assert!(
        !discard_ok && discard.contains("Only a failed job can be discarded"),
        "{discard}"
    );
    assert!(!unknown_ok, "{unknown_said}");
    assert_eq!(unknown_said.lines().count(), 1, "{unknown_said}");
    assert!(
        unknown_said.contains(&format!("no job {unknown}")),
        "{unknown_said}"
    );
    assert!(
        !bad_state_ok && bad_state.contains("State must be delayed, active or failed"),
        "{bad_state}"
    );
    assert_eq!(
        (after.delayed, after.failed),
        (2, 0),
        "retried and promoted, nothing discarded"
    );
    let recorded: Vec<(uuid::Uuid, &str, &str)> = actions
        .iter()
        .map(|a| (a.operator_id, a.action.as_str(), a.target.as_str()))
        .collect();
    assert_eq!(
        recorded,
        [
            (uuid::Uuid::nil(), "promote", delayed_id.as_str()),
            (uuid::Uuid::nil(), "retry", failed_id.as_str()),
        ],
        "the shell's actions, as the nil operator"
    );
}

/// The schemathesis the project pins, in a virtual environment under `target/` (made, and
/// the pinned release installed from PyPI, on first use; `scripts/schemathesis.sh`, which
/// the test command runs first, does the same and installs python3-venv when missing).
fn schemathesis() -> std::path::PathBuf {
    const RELEASE: &str = "schemathesis==4.32.5";
    let venv =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/schemathesis-venv");
    let bin = venv.join("bin/schemathesis");
    let installed = venv.join(".installed");
    if std::fs::read_to_string(&installed).is_ok_and(|pinned| pinned == RELEASE) && bin.exists() {
        return bin;
    }
    eprintln!("installing {RELEASE} into {} (once)", venv.display());
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .expect("python3 (Debian's python3 with venv, or CPython 3.10+)");
    assert!(made.success(), "python3 -m venv failed");
    let pip = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", RELEASE])
        .status()
        .unwrap();
    assert!(
        pip.success(),
        "pip install {RELEASE} failed (is PyPI reachable?)"
    );
    std::fs::write(installed, RELEASE).unwrap();
    bin
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_schema_mismatch_signed_in_or_anonymous() {
    let schemathesis = schemathesis();
    let namespace = unique_namespace().to_string();
    let mut child = ticketing(&namespace)
        .env("JWT_KEY", "0123456789abcdef0123456789abcdef")
        // The limits' 429 is documented, but would leave sign-in and sign-up untested.
        .env("RATE_LIMIT_PER_MINUTE", "0")
        .arg("up")
        .start();
    let url = wait_for_url(&mut child);
    let signup = reqwest::Client::new()
        .post(format!("{url}api/users/signup"))
        .json(&serde_json::json!({"email": "fuzzer@example.com", "password": "s3cret"}))
        .send()
        .await
        .unwrap();
    let session = signup.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("session=")
        .to_owned();
    let config = std::env::temp_dir().join(format!("schemathesis-{namespace}.toml"));
    // The session goes where the document's `session` security scheme says: a cookie, left
    // out by the cases that test what happens without one.
    std::fs::write(
        &config,
        "[auth.openapi.session]\napi_key = \"${SESSION}\"\n",
    )
    .unwrap();
    // Its cache of past cases lives in the working directory: a fresh one, not the crate.
    let workdir = std::env::temp_dir().join(format!("schemathesis-{namespace}"));
    std::fs::create_dir_all(&workdir).unwrap();
    let run = |signed_in: bool| {
        let mut command = Command::new(&schemathesis);
        command.current_dir(&workdir);
        if signed_in {
            command
                .arg("--config-file")
                .arg(&config)
                .env("SESSION", &session);
        }
        command
            .args(["run", &format!("{url}api/openapi.json")])
            // One worker: schemathesis 4.32's generation cache is not safe across threads.
            .args([
                "--max-examples",
                "25",
                "--workers",
                "1",
                "--seed",
                "20261130",
            ])
            // Every check but two: "schema-valid input is accepted" (a wrong password or a
            // webhook without Stripe's signature is refused as the contract says) and "a
            // deleted resource is gone" (DELETE on an order cancels it; it stays readable).
            .args(["--checks", "all"])
            .args([
                "--exclude-checks",
                "positive_data_acceptance,use_after_free",
            ])
            // Signed in, signing out would end the session the rest of the run uses.
            .args(if signed_in {
                &["--exclude-path", "/api/users/signout"][..]
            } else {
                &[]
            })
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    // `GET /api/orders` answers 200 to a session only: counted, it shows which run had one.
    let listed_orders = || async {
        let metrics = reqwest::get(format!("{url}metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        metrics
            .lines()
            .filter(|line| {
                line.starts_with("http_requests_total{")
                    && line.contains("method=\"GET\"")
                    && line.contains("route=\"/api/orders\"")
                    && line.contains("status=\"200\"")
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    let anonymous = run(false);
    let listed_anonymously = listed_orders().await;
    let signed_in = run(true);
    let listed_signed_in = listed_orders().await - listed_anonymously;
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(20));
    drop_namespace(&namespace).await;
    let _ = std::fs::remove_file(&config);
    let _ = std::fs::remove_dir_all(&workdir);

    assert_eq!(listed_anonymously, 0.0, "the anonymous run had no session");
    assert!(
        listed_signed_in > 0.0,
        "the signed-in run used its session (no 200 on GET /api/orders)"
    );
    for (who, output) in [("anonymous", anonymous), ("signed in", signed_in)] {
        let report = String::from_utf8_lossy(&output.stdout);
        let summary: Vec<&str> = report
            .lines()
            .filter(|line| line.contains(" generated,") || line.contains("Selected:"))
            .map(str::trim)
            .collect();
        eprintln!("schemathesis ({who}): {}", summary.join(" | "));
        // Lines cut short: a failure's report can quote whole source files.
        let shown: Vec<String> = report
            .lines()
            .take(400)
            .map(|line| line.chars().take(240).collect())
            .collect();
        assert!(
            output.status.success(),
            "schemathesis ({who}) found failures:\n{}",
            shown.join("\n")
        );
    }
}
