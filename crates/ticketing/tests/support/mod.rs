//! Where the end-to-end tests run: a `ticketing up` each test starts for itself, or a
//! running deployment named by the environment (the same tests, pointed at a base URL).
//!
//! | variable | meaning |
//! |---|---|
//! | `TICKETING_E2E_URL` | base URL of a running system (e.g. `scripts/stack up`'s last line); unset: start `ticketing up` |
//! | `TICKETING_E2E_NAMESPACE` | its `TICKETING_NAMESPACE` (default `ticketing`), to read its events |
//! | `TICKETING_E2E_JWT_KEY` | its `JWT_KEY`: tests sign their users in with it |
//! | `TICKETING_E2E_WINDOW_SECONDS` | its `EXPIRATION_WINDOW_SECONDS` |
//! | `TICKETING_E2E_STACK_DIR` | set when it is `scripts/stack`: its `STACK_DIR`, so a test may SIGKILL replicas and bring them back with `scripts/stack up` (run in this same environment) |
//!
//! A running system is shared by every test, so tests only look at what they made: their
//! own users, tickets, orders and the events about those.

#![allow(dead_code)]

pub mod burst;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use serde_json::Value;
use ticketing_common::{
    bus::Bus,
    db::{self, DatabaseTarget},
    session::SessionKeys,
    settings::Namespace,
    testing::{
        OPERATOR_EMAIL,
        api::{Reply, User, events_on, send},
        database_url, nats_url, unique_namespace,
    },
};
use ticketing_events::Subject;

const BIN: &str = env!("CARGO_BIN_EXE_ticketing");
/// The session key of the `ticketing up` the tests start.
const UP_KEY: &str = "end-to-end-test-key-end-to-end-test-key";
/// The order window of the `ticketing up` the tests start.
const UP_WINDOW: Duration = Duration::from_secs(3);

enum Kind {
    /// `ticketing up`, started here; restarted in place after a kill.
    Up {
        child: tokio::process::Child,
        addr: String,
    },
    /// `scripts/stack`, running from this `STACK_DIR`.
    Stack { dir: PathBuf },
    /// Some other deployment: only its URL is known.
    External,
}

pub struct Target {
    /// Base URL without the trailing slash.
    pub base: String,
    pub namespace: Namespace,
    /// How long an unpaid order lives.
    pub window: Duration,
    pub client: reqwest::Client,
    /// The NATS it runs on (`NATS_URL`).
    pub nats_url: String,
    keys: SessionKeys,
    /// Behind a lock so a kill can run while a burst reads the target.
    kind: tokio::sync::Mutex<Kind>,
    distributed: bool,
    /// The settings a `ticketing up` started here got besides the usual ones.
    up_env: Vec<(String, String)>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Target {
    /// A system whose orders live [`UP_WINDOW`] (when started here) or however long a
    /// running system's do.
    pub async fn start() -> Target {
        Target::start_with_window(UP_WINDOW).await
    }

    /// A system whose orders live `window` when started here; a running system's own window
    /// must be at least that long.
    pub async fn start_with_window(window: Duration) -> Target {
        Target::start_with(window, &[]).await
    }

    /// A system whose orders live `window` when started here, the `ticketing up` started
    /// with `env` besides its usual settings (a `NATS_URL` names the NATS it runs on).
    pub async fn start_with(window: Duration, env_vars: &[(&str, String)]) -> Target {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        let Some(base) = env("TICKETING_E2E_URL") else {
            let namespace = unique_namespace();
            let env_vars: Vec<(String, String)> = env_vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            let nats_url = env_vars
                .iter()
                .find(|(k, _)| k == "NATS_URL")
                .map_or_else(nats_url, |(_, v)| v.clone());
            let (child, base) =
                start_up(namespace.as_str(), "127.0.0.1:0", window, &env_vars).await;
            let addr = base.trim_start_matches("http://").to_owned();
            return Target {
                base,
                namespace,
                window,
                client,
                nats_url,
                keys: SessionKeys::new(UP_KEY.as_bytes(), false).expect("session key"),
                kind: tokio::sync::Mutex::new(Kind::Up { child, addr }),
                distributed: false,
                up_env: env_vars,
            };
        };
        let key = env("TICKETING_E2E_JWT_KEY")
            .expect("TICKETING_E2E_URL needs TICKETING_E2E_JWT_KEY (the system's JWT_KEY)");
        let own_window = env("TICKETING_E2E_WINDOW_SECONDS")
            .expect("TICKETING_E2E_URL needs TICKETING_E2E_WINDOW_SECONDS (its EXPIRATION_WINDOW_SECONDS)")
            .parse()
            .map(Duration::from_secs)
            .expect("TICKETING_E2E_WINDOW_SECONDS is a number of seconds");
        assert!(
            own_window >= window,
            "this test needs orders that live at least {window:?}; the system's live {own_window:?} (TICKETING_E2E_WINDOW_SECONDS)"
        );
        let namespace = env("TICKETING_E2E_NAMESPACE")
            .unwrap_or_else(|| "ticketing".to_owned())
            .parse()
            .expect("TICKETING_E2E_NAMESPACE is a valid namespace");
        let kind = match env("TICKETING_E2E_STACK_DIR") {
            Some(dir) => Kind::Stack { dir: dir.into() },
            None => Kind::External,
        };
        Target {
            base: base.trim_end_matches('/').to_owned(),
            namespace,
            window: own_window,
            client,
            nats_url: nats_url(),
            keys: SessionKeys::new(key.as_bytes(), false).expect("TICKETING_E2E_JWT_KEY"),
            kind: tokio::sync::Mutex::new(kind),
            distributed: true,
            up_env: Vec::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A new user, signed in with the system's session key.
    pub fn user(&self) -> User {
        User::signed_in(&self.keys)
    }

    /// An operator: the system must name [`OPERATOR_EMAIL`] in `ADMIN_EMAILS` (the `up` the
    /// tests start does, and `scripts/test.sh` starts the stack so).
    pub fn operator(&self) -> User {
        User::operator(&self.keys)
    }

    /// The system's event stream.
    pub async fn bus(&self) -> Bus {
        Bus::connect(&self.nats_url, &self.namespace)
            .await
            .expect("NATS with JetStream")
    }

    pub fn is_distributed(&self) -> bool {
        self.distributed
    }

    /// SIGKILLs one replica of every replicated service (`scripts/stack`), or the whole
    /// process (`ticketing up`, which is then started again on the same port). Returns what
    /// was killed.
    pub async fn kill_replicas(&self) -> Vec<String> {
        match &mut *self.kind.lock().await {
            Kind::Up { child, addr } => {
                child.start_kill().expect("SIGKILL ticketing up");
                let _ = child.wait().await;
                let (fresh, _) =
                    start_up(self.namespace.as_str(), addr, self.window, &self.up_env).await;
                *child = fresh;
                vec!["ticketing up (restarted on the same port)".to_owned()]
            }
            Kind::Stack { dir } => {
                let mut killed = Vec::new();
                for name in ["tickets-1", "orders-1", "expiration-1", "payments-1"] {
                    let pidfile = dir.join("run").join(format!("{name}.pid"));
                    // "<pid> <start time>", written by scripts/stack.
                    let record = std::fs::read_to_string(&pidfile)
                        .unwrap_or_else(|e| panic!("{}: {e}", pidfile.display()));
                    let pid = record.split_whitespace().next().unwrap_or_default();
                    let status = std::process::Command::new("kill")
                        .args(["-KILL", pid])
                        .status()
                        .expect("kill");
                    assert!(status.success(), "SIGKILL {name} (pid {pid})");
                    killed.push(format!("{name} (pid {pid})"));
                }
                killed
            }
            Kind::External => panic!(
                "killing replicas needs TICKETING_E2E_STACK_DIR (a system started by scripts/stack)"
            ),
        }
    }

    /// Brings back whatever `kill_replicas` took down.
    pub fn restore(&self) {
        let kind = self.kind.try_lock().expect("no kill under way");
        if let Kind::Stack { dir } = &*kind {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            let output = std::process::Command::new("bash")
                .arg("scripts/stack")
                .arg("up")
                .current_dir(root)
                .env("STACK_DIR", dir)
                .output()
                .expect("scripts/stack up");
            assert!(
                output.status.success(),
                "scripts/stack up did not bring the stack back: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    /// Stops what this target started (a `ticketing up` and what it made on the shared
    /// servers); a running system is left as it is.
    pub async fn stop(self) {
        let Kind::Up { mut child, .. } = self.kind.into_inner() else {
            return;
        };
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let exited = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
        assert!(
            exited.is_ok_and(|status| status.is_ok_and(|s| s.success())),
            "ticketing up exits cleanly on SIGTERM"
        );
        drop_namespace_on(self.namespace.as_str(), &self.nats_url).await;
    }

    /// The pid of the `ticketing up` started here.
    pub async fn pid(&self) -> Option<u32> {
        match &*self.kind.lock().await {
            Kind::Up { child, .. } => child.id(),
            _ => None,
        }
    }
}

/// Removes what a run of the binary made on the shared servers: its databases and stream.
pub async fn drop_namespace(namespace: &str) {
    drop_namespace_on(namespace, &nats_url()).await;
}

/// [`drop_namespace`], its stream being on the NATS at `nats`.
pub async fn drop_namespace_on(namespace: &str, nats: &str) {
    for service in ["auth", "tickets", "orders", "payments"] {
        let name = format!("{namespace}_{service}");
        let target = DatabaseTarget::resolve(&database_url(), None, &name).unwrap();
        let _ = db::drop_database(&target).await;
    }
    let namespace = namespace.parse().expect("a namespace");
    if let Ok(bus) = Bus::connect(nats, &namespace).await {
        let _ = bus.delete_stream().await;
    }
}

/// Starts `ticketing up` on `addr`; returns it and its base URL (no trailing slash).
async fn start_up(
    namespace: &str,
    addr: &str,
    window: Duration,
    env_vars: &[(String, String)],
) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(BIN)
        .arg("up")
        .env("JWT_KEY", UP_KEY)
        .env("TICKETING_NAMESPACE", namespace)
        .env("TICKETING_ADDR", addr)
        .env("EXPIRATION_WINDOW_SECONDS", window.as_secs().to_string())
        // The bursts place 50 orders per buyer.
        .env("MAX_LIVE_ORDERS_PER_USER", "0")
        .env("ADMIN_EMAILS", OPERATOR_EMAIL)
        .env(
            "RUST_LOG",
            std::env::var("E2E_LOG").unwrap_or("warn".into()),
        )
        // Several of these run at once beside the other tests: stay well inside
        // PostgreSQL's default 100 connections.
        .env("DATABASE_POOL_SIZE", "6")
        .envs(env_vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start ticketing up");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // Reads (and keeps draining) its stdout, its log included, which goes on to the test's
    // output; sends the URL it announces.
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("ticketing up: {line}");
            if let Some(rest) = line.strip_prefix("Ticketing is up at ") {
                let url = rest.split_whitespace().next().unwrap_or_default();
                let _ = tx.send(url.trim_end_matches('/').to_owned());
            }
        }
    });
    let base = tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .ok()
        .flatten()
        .expect("`ticketing up` printed its URL");
    (child, base)
}

/// Sends a request to the system, with the user's session and a JSON body if given.
pub async fn call(
    target: &Target,
    method: reqwest::Method,
    path: &str,
    user: Option<&User>,
    body: Option<Value>,
) -> Reply {
    let body = body.map(|b| (Some("application/json"), b.to_string()));
    send(&target.client, method, target.url(path), user, body).await
}

/// `POST` with a JSON body.
pub async fn post(target: &Target, path: &str, user: Option<&User>, body: Option<Value>) -> Reply {
    call(target, reqwest::Method::POST, path, user, body).await
}

/// `GET`, asserting 200; the JSON body.
pub async fn get_json(target: &Target, path: &str, user: Option<&User>) -> Value {
    let reply = call(target, reqwest::Method::GET, path, user, None).await;
    assert_eq!(
        reply.status,
        reqwest::StatusCode::OK,
        "GET {path}: {}",
        reply.text
    );
    reply.json()
}

/// Lists a ticket titled `title` as `seller`, then orders it as `buyer` once the orders
/// service has learnt it from its event (until then ordering it is 404; a leader election
/// may hold the event up for seconds). The ticket id and the order.
pub async fn list_and_order(
    target: &Target,
    seller: &User,
    buyer: &User,
    title: &str,
) -> (String, Value) {
    let body = serde_json::json!({"title": title, "price": 19.99});
    let ticket = post(target, "/api/tickets", Some(seller), Some(body)).await;
    assert_eq!(
        ticket.status,
        reqwest::StatusCode::CREATED,
        "{}",
        ticket.text
    );
    let ticket_id = ticket.json()["id"].as_str().unwrap().to_owned();
    let order = ticketing_common::testing::eventually(Duration::from_secs(30), || async {
        let body = serde_json::json!({"ticketId": ticket_id});
        let reply = post(target, "/api/orders", Some(buyer), Some(body)).await;
        (reply.status == reqwest::StatusCode::CREATED).then(|| reply.json())
    })
    .await
    .expect("the order was accepted");
    (ticket_id, order)
}

/// The data of every event on the system's stream on one of `subjects`, oldest first.
pub async fn events(target: &Target, subjects: &[Subject]) -> Vec<(Subject, Value)> {
    events_on(&target.bus().await, subjects)
        .await
        .into_iter()
        .map(|(subject, envelope)| (subject, envelope["data"].clone()))
        .collect()
}

/// Counts values by key.
pub fn tally<'a>(keys: impl IntoIterator<Item = &'a str>) -> HashMap<&'a str, usize> {
    let mut counts = HashMap::new();
    for key in keys {
        *counts.entry(key).or_default() += 1;
    }
    counts
}
