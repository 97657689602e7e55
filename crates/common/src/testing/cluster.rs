//! Replicated infrastructure a test starts for itself on loopback, and kills on purpose: a
//! NATS cluster with JetStream ([`NatsCluster`]), a Redis master with a replica under three
//! sentinels ([`SentinelRedis`]), and a PostgreSQL server of its own ([`OwnPostgres`]). Each
//! runs as child processes on free ports with its files in a private temporary directory,
//! is SIGKILLed as a crash would be, and is stopped and removed when dropped. Nothing here
//! touches the shared servers.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use serde_json::Value;

use super::{eventually, free_port};

/// A private temporary directory, removed on drop.
fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ticketing-{what}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    dir
}

fn sigkill(child: &mut Option<tokio::process::Child>) {
    if let Some(child) = child.as_mut() {
        let _ = child.start_kill();
    }
}

async fn port_open(port: u16) -> Option<()> {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()
        .map(drop)
}

/// One `nats-server` of a [`NatsCluster`].
pub struct NatsNode {
    /// `n1`, `n2`, ...: its `server_name`, as JetStream names leaders and peers.
    pub name: String,
    /// The client port.
    pub port: u16,
    /// The monitoring port (`/jsz`, `/connz`).
    pub monitor_port: u16,
    args: Vec<String>,
    child: Option<tokio::process::Child>,
}

impl NatsNode {
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// A NATS cluster with JetStream on loopback, one process per node, each storing under its
/// own directory, so a killed node restarted on the same ports catches up from its peers.
pub struct NatsCluster {
    pub nodes: Vec<NatsNode>,
    dir: PathBuf,
    http: reqwest::Client,
}

impl NatsCluster {
    /// Starts `size` nodes and waits until they have elected a JetStream meta leader (before
    /// that, creating a stream fails).
    pub async fn start(size: usize) -> NatsCluster {
        let dir = temp_dir("nats-cluster");
        let routes: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let route_urls = routes
            .iter()
            .map(|port| format!("nats://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        let cluster_name = format!("c{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let nodes = (0..size)
            .map(|i| {
                let name = format!("n{}", i + 1);
                let (port, monitor_port) = (free_port(), free_port());
                let store = dir.join(&name);
                let args = vec![
                    "-a".into(),
                    "127.0.0.1".into(),
                    "-p".into(),
                    port.to_string(),
                    "-m".into(),
                    monitor_port.to_string(),
                    "--server_name".into(),
                    name.clone(),
                    "--cluster_name".into(),
                    cluster_name.clone(),
                    "--cluster".into(),
                    format!("nats://127.0.0.1:{}", routes[i]),
                    "--routes".into(),
                    route_urls.clone(),
                    "-js".into(),
                    "-sd".into(),
                    store.display().to_string(),
                    "-l".into(),
                    dir.join(format!("{name}.log")).display().to_string(),
                ];
                NatsNode {
                    name,
                    port,
                    monitor_port,
                    args,
                    child: None,
                }
            })
            .collect();
        let mut cluster = NatsCluster {
            nodes,
            dir,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(2))
                .build()
                .expect("http client"),
        };
        for i in 0..size {
            cluster.spawn(i);
        }
        for i in 0..size {
            let port = cluster.nodes[i].port;
            let up = eventually(Duration::from_secs(15), || port_open(port)).await;
            assert!(up.is_some(), "nats-server {} did not start", i + 1);
        }
        let elected = eventually(Duration::from_secs(30), || async {
            let mut leaders = Vec::new();
            for i in 0..cluster.nodes.len() {
                let jsz = cluster.jsz(i, "").await?;
                leaders.push(jsz["meta_cluster"]["leader"].as_str()?.to_owned());
            }
            leaders.windows(2).all(|w| w[0] == w[1]).then_some(())
        })
        .await;
        assert!(elected.is_some(), "the NATS cluster elected no meta leader");
        cluster
    }

    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let child = tokio::process::Command::new("nats-server")
            .args(&node.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server on PATH (scripts/services.sh installs it)");
        node.child = Some(child);
    }

    /// Every node's client URL, comma-separated: a `NATS_URL` for the whole cluster.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(NatsNode::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The index of the node named `name` (`n2`).
    pub fn index_of(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node named {name}"))
    }

    /// SIGKILLs node `i`, as a crash would.
    pub async fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts node `i` again on its ports and store, and waits until it takes clients.
    pub async fn restart(&mut self, i: usize) {
        self.spawn(i);
        let port = self.nodes[i].port;
        let up = eventually(Duration::from_secs(15), || port_open(port)).await;
        assert!(up.is_some(), "nats-server {} did not come back", i + 1);
    }

    /// Node `i`'s `/jsz` with `query` (e.g. `streams=true&consumers=true&config=true`).
    pub async fn jsz(&self, i: usize, query: &str) -> Option<Value> {
        let url = format!(
            "http://127.0.0.1:{}/jsz?{query}",
            self.nodes[i].monitor_port
        );
        let response = self.http.get(url).send().await.ok()?;
        response.json().await.ok()
    }

    /// What the node leading `stream` reports about it (`/jsz` stream detail: `config`,
    /// `state`, `cluster` with its leader and replicas, and `consumer_detail`); the first
    /// running node that knows it, while it has no leader. (Followers of nats-server 2.9
    /// report a stale state for consumers; the leader's view is the one to read.)
    pub async fn stream(&self, stream: &str) -> Option<Value> {
        let mut seen = None;
        for i in (0..self.nodes.len()).filter(|i| self.nodes[*i].is_running()) {
            let Some(detail) = self.stream_on(i, stream).await else {
                continue;
            };
            let leader = detail["cluster"]["leader"].as_str().map(str::to_owned);
            if leader.as_deref() == Some(self.nodes[i].name.as_str()) {
                return Some(detail);
            }
            if let Some(leader) = leader
                .and_then(|name| self.nodes.iter().position(|n| n.name == name))
                .filter(|l| self.nodes[*l].is_running())
                && let Some(detail) = self.stream_on(leader, stream).await
            {
                return Some(detail);
            }
            seen.get_or_insert(detail);
        }
        seen
    }

    /// What the node leading consumer `name` of `stream` reports about it (`/jsz` consumer
    /// detail: `config`, `ack_floor`, `num_pending`, `cluster`).
    pub async fn consumer(&self, stream: &str, name: &str) -> Option<Value> {
        let find = |detail: Value| {
            detail["consumer_detail"]
                .as_array()?
                .iter()
                .find(|c| c["name"] == name)
                .cloned()
        };
        let any = find(self.stream(stream).await?)?;
        let leader = any["cluster"]["leader"].as_str()?;
        let i = self.nodes.iter().position(|n| n.name == leader)?;
        find(self.stream_on(i, stream).await?)
    }

    /// Node `i`'s view of `stream`.
    async fn stream_on(&self, i: usize, stream: &str) -> Option<Value> {
        let jsz = self
            .jsz(i, "streams=true&consumers=true&config=true")
            .await?;
        jsz["account_details"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|account| account["stream_detail"].as_array().into_iter().flatten())
            .find(|detail| detail["name"] == stream)
            .cloned()
    }

    /// The node leading `stream` now, if it has a leader.
    pub async fn stream_leader(&self, stream: &str) -> Option<usize> {
        let detail = self.stream(stream).await?;
        let leader = detail["cluster"]["leader"].as_str()?;
        Some(self.index_of(leader))
    }

    /// Node `i`'s own copy of `stream`: its state (`messages`, `last_seq`) as that node
    /// stores it.
    pub async fn local_state(&self, i: usize, stream: &str) -> Option<Value> {
        self.stream_on(i, stream)
            .await
            .map(|detail| detail["state"].clone())
    }

    /// The nodes a client connection named `name` (`ConnectOptions::name`) is on now.
    pub async fn nodes_serving(&self, name: &str) -> Vec<usize> {
        let mut serving = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if !node.is_running() {
                continue;
            }
            let url = format!("http://127.0.0.1:{}/connz?limit=1024", node.monitor_port);
            let Ok(response) = self.http.get(url).send().await else {
                continue;
            };
            let Ok(connz) = response.json::<Value>().await else {
                continue;
            };
            let named = connz["connections"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["name"] == name);
            if named {
                serving.push(i);
            }
        }
        serving
    }

    /// Where the nodes keep their logs (`<name>.log`), for a failing test to show.
    pub fn log_dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            sigkill(&mut node.child);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A queue Redis under Sentinel on loopback: a master, one replica, and three sentinels that
/// watch it under [`SentinelRedis::MASTER`] (quorum 2) and promote the replica a second
/// after the master stops answering.
pub struct SentinelRedis {
    /// Client ports of the data nodes: the master as started, then the replica.
    pub ports: [u16; 2],
    /// The sentinels' ports.
    pub sentinel_ports: [u16; 3],
    data: [Option<tokio::process::Child>; 2],
    sentinels: Vec<tokio::process::Child>,
    dir: PathBuf,
}

impl SentinelRedis {
    /// The name the sentinels monitor the master under.
    pub const MASTER: &'static str = "queue";

    /// Starts the master and the replica (append-only, `noeviction`, as the queue requires),
    /// then the sentinels, and waits until every sentinel knows the replica.
    pub async fn start() -> SentinelRedis {
        let dir = temp_dir("redis-sentinel");
        let ports = [free_port(), free_port()];
        let sentinel_ports = [free_port(), free_port(), free_port()];
        let mut data = [None, None];
        for (i, port) in ports.iter().enumerate() {
            let node_dir = dir.join(format!("redis-{}", i + 1));
            std::fs::create_dir_all(&node_dir).expect("redis directory");
            let mut args: Vec<String> = [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--maxmemory-policy",
                "noeviction",
                "--dir",
                &node_dir.display().to_string(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            if i == 1 {
                args.extend([
                    "--replicaof".into(),
                    "127.0.0.1".into(),
                    ports[0].to_string(),
                ]);
            }
            data[i] = Some(spawn_redis(&args));
        }
        for port in ports {
            let up = eventually(Duration::from_secs(10), || ping(port)).await;
            assert!(up.is_some(), "redis-server on {port} did not start");
        }
        let sentinels = sentinel_ports
            .iter()
            .enumerate()
            .map(|(i, port)| {
                let conf = dir.join(format!("sentinel-{}.conf", i + 1));
                std::fs::write(
                    &conf,
                    format!(
                        "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                         sentinel monitor {master} 127.0.0.1 {master_port} 2\n\
                         sentinel down-after-milliseconds {master} 1000\n\
                         sentinel failover-timeout {master} 10000\n\
                         sentinel parallel-syncs {master} 1\n",
                        dir = dir.display(),
                        master = Self::MASTER,
                        master_port = ports[0],
                    ),
                )
                .expect("sentinel configuration");
                spawn_redis(&[conf.display().to_string(), "--sentinel".into()])
            })
            .collect();
        let redis = SentinelRedis {
            ports,
            sentinel_ports,
            data,
            sentinels,
            dir,
        };
        let watching = eventually(Duration::from_secs(20), || async {
            // Each sentinel must know the replica (to promote it) and the two other
            // sentinels (to reach a quorum and elect the one that runs the failover).
            for port in redis.sentinel_ports {
                let replicas: Vec<redis::Value> =
                    sentinel_query(port, &["SENTINEL", "REPLICAS", Self::MASTER])
                        .await
                        .ok()?;
                let others: Vec<redis::Value> =
                    sentinel_query(port, &["SENTINEL", "SENTINELS", Self::MASTER])
                        .await
                        .ok()?;
                if replicas.is_empty() || others.len() < 2 {
                    return None;
                }
            }
            Some(())
        })
        .await;
        assert!(
            watching.is_some(),
            "the sentinels never saw the replica and each other"
        );
        redis
    }

    /// `redis+sentinel://` URL naming the three sentinels and the master.
    pub fn url(&self) -> String {
        let sentinels = self
            .sentinel_ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        format!("redis+sentinel://{sentinels}/{}", Self::MASTER)
    }

    /// A plain URL of data node `i` (0: the master as started, 1: the replica).
    pub fn node_url(&self, i: usize) -> String {
        format!("redis://127.0.0.1:{}", self.ports[i])
    }

    /// The port of the master the sentinels name now (the first that answers).
    pub async fn master_port(&self) -> Option<u16> {
        for port in self.sentinel_ports {
            let Ok(address) = sentinel_query::<Vec<String>>(
                port,
                &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", Self::MASTER],
            )
            .await
            else {
                continue;
            };
            if let Some(port) = address.get(1).and_then(|p| p.parse().ok()) {
                return Some(port);
            }
        }
        None
    }

    /// SIGKILLs data node `i`.
    pub async fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.data[i].take() {
            let _ = child.kill().await;
        }
    }
}

impl Drop for SentinelRedis {
    fn drop(&mut self) {
        for child in &mut self.data {
            sigkill(child);
        }
        for child in &mut self.sentinels {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spawn_redis(args: &[String]) -> tokio::process::Child {
    tokio::process::Command::new("redis-server")
        .args(args)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server on PATH (scripts/services.sh installs it)")
}

async fn ping(port: u16) -> Option<()> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .ok()
        .map(drop)
}

async fn sentinel_query<T: redis::FromRedisValue>(
    port: u16,
    words: &[&str],
) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut cmd = redis::cmd(words[0]);
    for word in &words[1..] {
        cmd.arg(*word);
    }
    cmd.query_async(&mut conn).await
}

/// A PostgreSQL server of the test's own (initdb into a temporary directory, run as the
/// `postgres` user when the test runs as root, since PostgreSQL refuses to run as root),
/// listening on loopback on a free port, which the test may stop hard and start again.
pub struct OwnPostgres {
    pub port: u16,
    bin: PathBuf,
    dir: PathBuf,
    /// `runuser -u postgres --` when running as root; nothing otherwise.
    as_user: Vec<String>,
}

impl OwnPostgres {
    /// initdb and start. `None` when the PostgreSQL server binaries are not installed
    /// (`/usr/lib/postgresql/<version>/bin`).
    pub async fn start() -> Option<OwnPostgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .map(|entry| entry.path().join("bin"))
            .filter(|bin| bin.join("initdb").exists())
            .max()?;
        let dir = temp_dir("postgres");
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
        let as_user: Vec<String> = if root {
            // The postgres user must be able to reach the directory and own the data.
            let status = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(status.success(), "chown the PostgreSQL directory");
            ["runuser", "-u", "postgres", "--"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        } else {
            Vec::new()
        };
        let pg = OwnPostgres {
            port: free_port(),
            bin,
            dir,
            as_user,
        };
        let data = pg.data_dir();
        let status = pg
            .command("initdb")
            .args(["-D", &data, "-U", "postgres", "--auth=trust", "--no-sync"])
            .args(["-E", "UTF8", "--locale=C"])
            .stdout(Stdio::null())
            .status()
            .expect("initdb");
        assert!(status.success(), "initdb");
        pg.start_server().await;
        Some(pg)
    }

    fn data_dir(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn command(&self, program: &str) -> std::process::Command {
        let tool = self.bin.join(program).display().to_string();
        let mut command = match self.as_user.split_first() {
            Some((runner, args)) => {
                let mut command = std::process::Command::new(runner);
                command.args(args).arg(tool);
                command
            }
            None => std::process::Command::new(tool),
        };
        command.current_dir(&self.dir);
        command
    }

    /// Starts the server and waits until it takes connections.
    pub async fn start_server(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories='{}' -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("postgres.log").display().to_string();
        let status = self
            .command("pg_ctl")
            .args([
                "-D",
                &self.data_dir(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "start",
            ])
            .stdout(Stdio::null())
            .status()
            .expect("pg_ctl start");
        assert!(status.success(), "pg_ctl start (log in {log})");
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`: every connection cut, no
    /// checkpoint, as a crash; committed work survives through the WAL).
    pub fn stop_immediately(&self) {
        let status = self
            .command("pg_ctl")
            .args(["-D", &self.data_dir(), "-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .status()
            .expect("pg_ctl stop");
        assert!(status.success(), "pg_ctl stop");
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", &self.data_dir(), "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
