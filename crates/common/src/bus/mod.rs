//! The event bus: NATS JetStream with a transactional outbox in front of it.
//!
//! - [`Bus`] connects (to one server or any of a cluster's, failing over between them),
//!   creates or updates the namespace's stream with the configured replicas, and makes one
//!   durable pull consumer per (service, subject) with as many replicas as the stream.
//! - [`outbox`] is how a service with a database sends events: [`outbox::enqueue`] inside
//!   the caller's transaction, and [`outbox::Relay`] publishing committed rows. (Expiration,
//!   whose state is its Redis queue, publishes when a job fires, acking the job only after
//!   JetStream's ack; its event id is derived from the order, so a repeat is one message.)
//! - [`listener`] runs a service's [`listener::Subscription`]s over their consumers: ack after
//!   commit, NAK with delay for "not yet", retries for as long as a failure is transient, and
//!   [`parked`] events (kept, counted, replayable) for what can never be applied.
//! - [`publish`]: [`Bus::publish`] is how any event reaches JetStream (message id, trace
//!   headers, wait for the ack), for the outbox relay and expiration's worker alike.

pub mod listener;
pub mod outbox;
pub mod parked;
pub mod publish;

use std::time::Duration;

use anyhow::{Context, bail};
use async_nats::{
    ServerAddr,
    jetstream::{
        self,
        consumer::{AckPolicy, DeliverPolicy, pull},
        stream::{self, DiscardPolicy, RetentionPolicy, StorageType},
    },
};
use ticketing_events::Subject;

use crate::settings::Namespace;

/// How long the stream keeps events. Consumers that fall further behind lose them.
const STREAM_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// The server drops a message whose id it saw within this window.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// How long a delivered message may stay unacknowledged before it is redelivered: how long
/// the events a crashed replica held wait before another replica gets them. A handler that
/// runs longer keeps its message with progress acks (`listener`).
pub const ACK_WAIT: Duration = Duration::from_secs(10);

/// The name of one service's durable consumer of one subject (`orders-payment-created`),
/// also the name of the task that runs it.
pub fn consumer_name(service: &str, subject: Subject) -> String {
    format!("{service}-{}", subject.as_str().replace('.', "-"))
}

/// The servers a `NATS_URL` names: one URL, or a comma-separated list of a cluster's.
/// Errors name the entry by position, never by its text (it may hold a token).
pub fn nats_servers(url: &str) -> anyhow::Result<Vec<ServerAddr>> {
    let entries: Vec<&str> = url.split(',').map(str::trim).collect();
    let many = entries.len() > 1;
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let which = || match many {
                true => format!("server {} of NATS_URL", i + 1),
                false => "NATS_URL".to_owned(),
            };
            if entry.is_empty() {
                bail!("{} is empty", which());
            }
            entry
                .parse::<ServerAddr>()
                .with_context(|| format!("{} is not a NATS URL like nats://host:4222", which()))
        })
        .collect()
}

/// A JetStream connection bound to one namespace's stream and subjects.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    stream: String,
    prefix: String,
    /// The stream's replicas as configured (`JETSTREAM_REPLICAS`).
    replicas: usize,
    /// Whether NATS is a cluster (several servers listed, or replicas asked for).
    clustered: bool,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("stream", &self.stream)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Bus {
    /// Connects to NATS and creates or updates the stream, with one replica. Fails with a
    /// plain message when no server is there; once connected, the client reconnects by itself
    /// forever.
    pub async fn connect(url: &str, namespace: &Namespace) -> anyhow::Result<Bus> {
        Bus::connect_with_replicas(url, namespace, 1).await
    }

    /// [`Bus::connect`] to one server or a comma-separated list of a cluster's (`NATS_URL`),
    /// with the stream at `replicas` (`JETSTREAM_REPLICAS`): created so, or raised to it. The
    /// client connects to any listed server and, when that one goes away, to another.
    pub async fn connect_with_replicas(
        url: &str,
        namespace: &Namespace,
        replicas: usize,
    ) -> anyhow::Result<Bus> {
        let servers = nats_servers(url)?;
        let clustered = servers.len() > 1 || replicas > 1;
        let client = async_nats::ConnectOptions::new()
            // Names this process in the servers' connection lists (`/connz`).
            .name(format!("ticketing[{}]", std::process::id()))
            .connection_timeout(Duration::from_secs(5))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Disconnected => {
                        tracing::warn!("NATS connection lost; reconnecting")
                    }
                    async_nats::Event::Connected => tracing::info!("NATS connected"),
                    other => tracing::debug!(event = %other, "NATS event"),
                }
            })
            .connect(servers)
            .await
            .with_context(|| nats_unreachable_message(url))?;
        // With `retry_on_initial_connect` the call returns at once; wait a little for the
        // first connection so a missing server is reported at start-up, not later.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while client.connection_state() != async_nats::connection::State::Connected {
            if tokio::time::Instant::now() > deadline {
                bail!(nats_unreachable_message(url));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let bus = Bus {
            jetstream: jetstream::new(client.clone()),
            client,
            stream: namespace.stream(),
            prefix: namespace.subject_prefix().to_owned(),
            replicas: replicas.max(1),
            clustered,
        };
        bus.ensure_stream().await?;
        Ok(bus)
    }

    /// The full subject of an event type: `<prefix>.ticket.created`.
    pub fn subject(&self, subject: Subject) -> String {
        subject.under(&self.prefix)
    }

    pub fn stream_name(&self) -> &str {
        &self.stream
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    /// Whether the connection is up right now (for `/readyz`).
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.stream.clone(),
            subjects: vec![format!("{}.>", self.prefix)],
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            discard: DiscardPolicy::Old,
            max_age: STREAM_MAX_AGE,
            duplicate_window: DUPLICATE_WINDOW,
            num_replicas: self.replicas,
            ..Default::default()
        }
    }

    /// Creates the stream, or updates an existing one to our configuration. Its replicas
    /// only ever go up: an existing stream with fewer than the configured replicas is raised
    /// (the new replicas copy what it holds), one with more keeps them.
    pub async fn ensure_stream(&self) -> anyhow::Result<()> {
        if !self.clustered {
            return self.try_ensure_stream().await;
        }
        // A cluster answers slowly (or times out) while the stream is being made or grown by
        // another process starting at the same moment, or while it elects a leader: keep
        // trying for a while before start-up gives up.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match self.try_ensure_stream().await {
                Ok(()) => return Ok(()),
                Err(error) if tokio::time::Instant::now() < deadline => {
                    tracing::info!(stream = %self.stream, error = format!("{error:#}"), "stream not ready yet; trying again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn try_ensure_stream(&self) -> anyhow::Result<()> {
        let mut config = self.stream_config();
        match self.jetstream.get_stream(&self.stream).await {
            Ok(existing) => {
                let current = &existing.cached_info().config;
                let has = current.num_replicas.max(1);
                if self.replicas < has {
                    // Lowering drops copies of every event; an operator does that on purpose
                    // with the NATS tools, never through a setting left at its default.
                    tracing::warn!(
                        stream = %self.stream,
                        replicas = has,
                        configured = self.replicas,
                        "JETSTREAM_REPLICAS is lower than the stream's replicas: not lowered, the stream keeps {has}"
                    );
                    config.num_replicas = has;
                }
                let same = current.subjects == config.subjects
                    && current.retention == config.retention
                    && current.storage == config.storage
                    && current.discard == config.discard
                    && current.max_age == config.max_age
                    && current.duplicate_window == config.duplicate_window
                    && has == config.num_replicas;
                if same {
                    // Every replica of every service starts here: no request when nothing changes.
                    return Ok(());
                }
                // The consumers' progress is read before the stream grows: while it does,
                // nats-server 2.9 may report a consumer's ack floor as 0.
                let floors = match self.replicas > has {
                    true => self.consumer_floors(&existing).await?,
                    false => Vec::new(),
                };
                self.jetstream
                    .update_stream(config)
                    .await
                    .with_context(|| format!("cannot update stream {}", self.stream))?;
                if self.replicas > has {
                    tracing::info!(stream = %self.stream, from = has, to = self.replicas, "stream's replicas raised");
                    let stream = self.jetstream.get_stream(&self.stream).await?;
                    for (durable, filter, floor) in floors {
                        let config = self.pull_config(&durable, &filter, self.replicas);
                        self.recreate_consumer(&stream, &durable, floor, config)
                            .await?;
                        tracing::info!(consumer = %durable, replicas = self.replicas, from = floor + 1, "consumer made anew with the stream's replicas");
                    }
                }
            }
            Err(_) => {
                if let Err(error) = self.jetstream.create_stream(config.clone()).await {
                    // Another process may have created it in between.
                    self.jetstream.get_stream(&self.stream).await.with_context(|| {
                        format!("cannot create stream {} (is JetStream enabled? start nats-server with -js): {error}", self.stream)
                    })?;
                }
            }
        }
        Ok(())
    }

    /// (durable name, filter subject, ack floor) of every pull consumer of the stream with
    /// fewer replicas than configured.
    async fn consumer_floors(
        &self,
        stream: &jetstream::stream::Stream,
    ) -> anyhow::Result<Vec<(String, String, u64)>> {
        use futures::TryStreamExt;
        let infos: Vec<jetstream::consumer::Info> = stream
            .consumers()
            .try_collect()
            .await
            .context("cannot list the stream's consumers")?;
        Ok(infos
            .into_iter()
            .filter(|info| info.config.num_replicas.max(1) < self.replicas)
            .filter_map(|info| {
                let durable = info.config.durable_name.clone()?;
                Some((
                    durable,
                    info.config.filter_subject.clone(),
                    info.ack_floor.stream_sequence,
                ))
            })
            .collect())
    }

    /// The configuration of a durable pull consumer of ours.
    fn pull_config(&self, durable: &str, filter: &str, replicas: usize) -> pull::Config {
        pull::Config {
            durable_name: Some(durable.to_owned()),
            filter_subject: filter.to_owned(),
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::All,
            ack_wait: ACK_WAIT,
            // Poison messages are stopped by the listener, which logs and counts them.
            max_deliver: -1,
            max_ack_pending: 10_000,
            num_replicas: replicas,
            ..Default::default()
        }
    }

    /// Replaces the consumer `durable` with one made from `config` that starts after stream
    /// sequence `floor`. Another replica of the service may be doing the same at once: a
    /// consumer already gone, or already made again, is fine.
    async fn recreate_consumer(
        &self,
        stream: &jetstream::stream::Stream,
        durable: &str,
        floor: u64,
        config: pull::Config,
    ) -> anyhow::Result<jetstream::consumer::PullConsumer> {
        let replicas = config.num_replicas;
        let config = pull::Config {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: floor + 1,
            },
            ..config
        };
        // Until it exists again at the new count: given up here, the next lookup would make
        // it from the stream's first event (no event lost, but every one delivered again).
        // The stream's raft group is busy growing just now: a request may time out and still
        // take effect later, so each step checks what the server holds before the next.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            use async_nats::jetstream::context::ConsumerInfoErrorKind;
            let error = match stream.consumer_info(durable).await {
                // Made anew already (by us on an earlier turn, or by another replica).
                Ok(info) if info.config.num_replicas >= replicas => {
                    match stream.get_consumer(durable).await {
                        Ok(consumer) => return Ok(consumer),
                        Err(error) => error.to_string(),
                    }
                }
                Ok(_) => match stream.delete_consumer(durable).await {
                    Ok(_) => continue,
                    Err(error) => error.to_string(),
                },
                Err(error) if error.kind() == ConsumerInfoErrorKind::NotFound => {
                    match stream.create_consumer(config.clone()).await {
                        Ok(consumer) => return Ok(consumer),
                        Err(error) => error.to_string(),
                    }
                }
                Err(error) => error.to_string(),
            };
            if tokio::time::Instant::now() > deadline {
                bail!("cannot make consumer {durable} anew: {error}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Deletes the stream and all its consumers (tests clean up with this).
    pub async fn delete_stream(&self) -> anyhow::Result<()> {
        self.jetstream.delete_stream(&self.stream).await?;
        Ok(())
    }

    /// The durable pull consumer of one service for one subject, created if missing, with as
    /// many replicas as the stream has. All replicas of a service share it, so each event
    /// goes to one of them.
    pub async fn consumer(
        &self,
        service: &str,
        subject: Subject,
    ) -> anyhow::Result<jetstream::consumer::PullConsumer> {
        let durable = consumer_name(service, subject);
        let filter = self.subject(subject);
        let stream = self
            .jetstream
            .get_stream(&self.stream)
            .await
            .context("stream missing")?;
        // The stream's own count, not the setting: a stream that kept more replicas than
        // configured keeps its consumers as safe as its events.
        let replicas = stream.cached_info().config.num_replicas.max(1);
        let config = self.pull_config(&durable, &filter, replicas);
        let mut consumer = stream
            .get_or_create_consumer::<pull::Config>(&durable, config.clone())
            .await
            .with_context(|| format!("cannot create consumer {durable}"))?;
        // (The server's answer to the create or lookup is cached on the consumer: no round trip.)
        let had = consumer.cached_info().config.clone();
        if had.num_replicas.max(1) < replicas {
            // Made before the stream's replicas were raised (by a process that did not raise
            // its consumers: one stopped half-way, or an older release). nats-server 2.9 raises a
            // consumer's replicas in place without handing its progress to the new replicas,
            // so one of them elected later would start again from the stream's first event.
            // Make it anew at the stream's replicas from its ack floor instead: every replica
            // starts from the same point, and what was acked above the floor comes once more
            // (handlers are idempotent).
            let floor = consumer.cached_info().ack_floor.stream_sequence;
            consumer = self
                .recreate_consumer(&stream, &durable, floor, config)
                .await?;
            tracing::info!(consumer = %durable, replicas, from = floor + 1, "consumer made anew with the stream's replicas");
        } else if had.ack_wait != ACK_WAIT || had.num_replicas.max(1) != replicas {
            // A consumer made by an older release keeps its old ack wait: bring it up to date
            // (an editable setting; every replica of the service agrees on the value).
            consumer = stream
                .create_consumer(config)
                .await
                .with_context(|| format!("cannot update consumer {durable}"))?;
            tracing::info!(consumer = %durable, ack_wait = ?ACK_WAIT, replicas, "consumer updated");
        }
        // nats-server 2.9 silently ignores settings it does not know; make sure the filter
        // survived, or this consumer would deliver every subject.
        let kept = consumer.cached_info().config.filter_subject.clone();
        if kept != filter {
            bail!("NATS kept filter subject {kept:?} for consumer {durable} instead of {filter:?}");
        }
        Ok(consumer)
    }
}

/// The one line a user sees when NATS is not there.
pub fn nats_unreachable_message(url: &str) -> String {
    format!(
        "NATS is not reachable at {}: start nats-server with JetStream (-js; scripts/services.sh starts a local one) or set NATS_URL",
        crate::secret::redact_url(url)
    )
}
