use std::{path::PathBuf, process::Stdio, time::Duration};

use sqlx::PgPool;
use ticketing_common::{
    bus::{Bus, outbox},
    settings::Namespace,
    testing::{TestBus, TestDb, unique_namespace},
};
use ticketing_events::{Envelope, ExpirationComplete};
use uuid::Uuid;

/// A fresh namespace with its own outbox database and stream.
pub struct World {
    pub db: TestDb,
    pub bus: TestBus,
}

impl World {
    pub async fn new() -> World {
        let namespace = unique_namespace();
        World::with_bus_url(namespace, &ticketing_common::testing::nats_url()).await
    }

    pub async fn with_bus_url(namespace: Namespace, url: &str) -> World {
        let db = TestDb::create(&namespace, "bus").await;
        outbox::install_schema(&db.pool)
            .await
            .expect("outbox schema");
        let bus = TestBus::on(url, &namespace).await;
        World { db, bus }
    }

    pub fn pool(&self) -> &PgPool {
        &self.db.pool
    }

    pub fn bus(&self) -> &Bus {
        &self.bus.bus
    }

    /// Writes one event in a committed transaction; returns its id.
    pub async fn commit_event(&self) -> Uuid {
        let mut tx = self.pool().begin().await.unwrap();
        let envelope = Envelope::new(ExpirationComplete {
            order_id: Uuid::now_v7(),
        });
        outbox::enqueue(&mut tx, &envelope).await.unwrap();
        tx.commit().await.unwrap();
        envelope.id
    }

    /// Messages stored in this world's stream (0 while NATS cannot answer).
    pub async fn stream_messages(&self) -> u64 {
        let Ok(mut stream) = self
            .bus()
            .jetstream()
            .get_stream(self.bus().stream_name())
            .await
        else {
            return 0;
        };
        stream.info().await.map_or(0, |info| info.state.messages)
    }

    pub async fn unsent(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            .fetch_one(self.pool())
            .await
            .unwrap()
    }
}

/// A nats-server of the test's own, on a free port, that the test may kill and restart.
pub struct OwnNats {
    pub port: u16,
    dir: PathBuf,
    child: Option<tokio::process::Child>,
}

impl OwnNats {
    pub async fn start() -> OwnNats {
        let dir = std::env::temp_dir().join(format!("ticketing-nats-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut nats = OwnNats {
            port: ticketing_common::testing::free_port(),
            dir,
            child: None,
        };
        nats.restart().await;
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port and store directory.
    pub async fn restart(&mut self) {
        let child = tokio::process::Command::new("nats-server")
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server on PATH (scripts/services.sh installs it)");
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.port);
        let up = ticketing_common::testing::eventually(Duration::from_secs(10), || {
            let addr = addr.clone();
            async move { tokio::net::TcpStream::connect(addr).await.ok().map(drop) }
        })
        .await;
        assert!(up.is_some(), "own nats-server did not start");
    }

    /// SIGKILL, as a crash would.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
