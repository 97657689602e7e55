//! The event bus: NATS JetStream with a transactional outbox in front of it.
//!
//! - [`Bus`] connects, creates or updates the namespace's stream, and makes one durable pull
//!   consumer per (service, subject).
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
use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, pull},
    stream::{self, DiscardPolicy, RetentionPolicy, StorageType},
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

/// A JetStream connection bound to one namespace's stream and subjects.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    stream: String,
    prefix: String,
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
    /// Connects to NATS and creates or updates the stream. Fails with a plain message when
    /// the server is not there; once connected, the client reconnects by itself forever.
    pub async fn connect(url: &str, namespace: &Namespace) -> anyhow::Result<Bus> {
        let client = async_nats::ConnectOptions::new()
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
            .connect(url)
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
            ..Default::default()
        }
    }

    /// Creates the stream, or updates an existing one to our configuration.
    pub async fn ensure_stream(&self) -> anyhow::Result<()> {
        let config = self.stream_config();
        match self.jetstream.get_stream(&self.stream).await {
            Ok(_) => {
                self.jetstream
                    .update_stream(config)
                    .await
                    .with_context(|| format!("cannot update stream {}", self.stream))?;
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

    /// Deletes the stream and all its consumers (tests clean up with this).
    pub async fn delete_stream(&self) -> anyhow::Result<()> {
        self.jetstream.delete_stream(&self.stream).await?;
        Ok(())
    }

    /// The durable pull consumer of one service for one subject, created if missing. All
    /// replicas of a service share it, so each event goes to one of them.
    pub async fn consumer(
        &self,
        service: &str,
        subject: Subject,
    ) -> anyhow::Result<jetstream::consumer::PullConsumer> {
        let durable = consumer_name(service, subject);
        let filter = self.subject(subject);
        let config = pull::Config {
            durable_name: Some(durable.clone()),
            filter_subject: filter.clone(),
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::All,
            ack_wait: ACK_WAIT,
            // Poison messages are stopped by the listener, which logs and counts them.
            max_deliver: -1,
            max_ack_pending: 10_000,
            ..Default::default()
        };
        let stream = self
            .jetstream
            .get_stream(&self.stream)
            .await
            .context("stream missing")?;
        let mut consumer = stream
            .get_or_create_consumer::<pull::Config>(&durable, config.clone())
            .await
            .with_context(|| format!("cannot create consumer {durable}"))?;
        // A consumer made by an older release keeps its old ack wait: bring it up to date
        // (an editable setting; every replica agrees on the value).
        // (The server's answer to the create or lookup is cached on the consumer: no round trip.)
        if consumer.cached_info().config.ack_wait != ACK_WAIT {
            consumer = stream
                .create_consumer(config)
                .await
                .with_context(|| format!("cannot update the ack wait of consumer {durable}"))?;
            tracing::info!(consumer = %durable, ack_wait = ?ACK_WAIT, "consumer's ack wait updated");
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
