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
    let mut child = ticketing(&namespace).arg("up").spawn().unwrap();
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
    let mut child = command.spawn().unwrap();
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
        .spawn()
        .unwrap();
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
        .spawn()
        .unwrap();
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
fn serve(namespace: &str, component: &str) -> (Child, String) {
    let mut child = ticketing(namespace)
        .env("JWT_KEY", "0123456789abcdef0123456789abcdef")
        .env("TICKETING_API_BASE", "http://127.0.0.1:9")
        .env("PAYMENTS_PROVIDER", "development")
        .args(["serve", component])
        .spawn()
        .unwrap();
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
