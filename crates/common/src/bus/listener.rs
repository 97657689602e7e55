//! Runs a handler over one durable consumer.
//!
//! For each message: decode the envelope, call the handler inside a span whose parent is the
//! trace that wrote the event, and then
//! - `Ok` → ack (the handler has committed by the time it returns);
//! - [`HandlerError::NotYet`] → NAK with a short delay (an event that overtook its
//!   predecessor), redelivered until the predecessor lands;
//! - [`HandlerError::Failed`] → NAK with a backoff doubling to 30 s, and after `max_deliver`
//!   failed tries (about ten minutes by default, so an outage of a dependency does not lose
//!   events) stop redelivering: log it, count it in `events_poisoned_total`, terminate it;
//! - an undecodable message is poison at once.
//!
//! Messages are handled concurrently (up to `concurrency` at once); handlers must therefore be
//! safe to run in any order, which the version rules in `CONTRACT.md` require anyway.

use std::{panic::AssertUnwindSafe, sync::Arc, time::Duration};

use async_nats::jetstream::{AckKind, Message};
use futures::{FutureExt, StreamExt};
use ticketing_events::{Envelope, Event, Subject};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, field};

use super::Bus;
use crate::{metrics as m, telemetry};

/// Why a handler did not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event depends on one that has not arrived yet; try again shortly.
    #[error("not yet: {0}")]
    NotYet(String),
    /// Applying failed; retried a bounded number of times.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<sqlx::Error> for HandlerError {
    fn from(error: sqlx::Error) -> Self {
        HandlerError::Failed(error.into())
    }
}

/// Tuning of a listener.
#[derive(Debug, Clone)]
pub struct ListenerSettings {
    /// Failed tries of a message (in this process) before it is given up as poison. "Not
    /// yet" answers do not count.
    pub max_deliver: i64,
    /// Deliveries of a "not yet" message before it is given up (its predecessor never came).
    pub max_not_yet: i64,
    /// Delay before a "not yet" message comes back; grows with each delivery up to 5 s.
    pub not_yet_delay: Duration,
    /// Delay before a failed message comes back; doubles with each failure up to 30 s.
    pub retry_delay: Duration,
    /// Messages handled at once by this replica.
    pub concurrency: usize,
}

impl Default for ListenerSettings {
    fn default() -> Self {
        ListenerSettings {
            // 0.5 s doubling to 30 s: about ten minutes of failures (a database failover, a
            // broker restart) before an event is given up.
            max_deliver: 24,
            // 0.1 s growing to 5 s: a predecessor may be late by hours before this gives up.
            max_not_yet: 5_000,
            not_yet_delay: Duration::from_millis(100),
            retry_delay: Duration::from_millis(500),
            concurrency: 32,
        }
    }
}

/// One service's subscription to one subject.
#[derive(Debug, Clone)]
pub struct Listener {
    bus: Bus,
    service: String,
    subject: Subject,
    settings: ListenerSettings,
    /// Failed tries per stream sequence, kept apart from JetStream's delivery count, which
    /// also counts "not yet" redeliveries.
    failures: Arc<std::sync::Mutex<std::collections::HashMap<u64, i64>>>,
}

impl Listener {
    pub fn new(bus: &Bus, service: &str, subject: Subject) -> Self {
        Listener {
            bus: bus.clone(),
            service: service.to_owned(),
            subject,
            settings: ListenerSettings::default(),
            failures: Arc::default(),
        }
    }

    pub fn with_settings(mut self, settings: ListenerSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Creates the durable consumer now, so events published from here on are kept for this
    /// service even before [`Listener::run`] starts pulling.
    pub async fn ensure_consumer(&self) -> anyhow::Result<()> {
        self.bus
            .consumer(&self.service, self.subject)
            .await
            .map(drop)
    }

    /// Handles messages until `shutdown`, then lets in-flight handlers finish.
    pub async fn run<T, F, Fut>(self, handler: F, shutdown: CancellationToken) -> anyhow::Result<()>
    where
        T: Event,
        F: Fn(Envelope<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send,
    {
        assert_eq!(
            T::SUBJECT,
            self.subject,
            "handler payload does not match the listener subject"
        );
        let _ = m::handle(); // counters recorded before the recorder exists would be lost
        let handler = Arc::new(handler);
        let mut backoff = Duration::from_millis(200);
        while !shutdown.is_cancelled() {
            let messages = async {
                let consumer = self.bus.consumer(&self.service, self.subject).await?;
                // Pull no more than we handle at once, so replicas share the work and a slow
                // replica does not sit on messages another could handle.
                anyhow::Ok(
                    consumer
                        .stream()
                        .max_messages_per_batch(self.settings.concurrency)
                        .messages()
                        .await?,
                )
            };
            let messages = match messages.await {
                Ok(messages) => messages,
                Err(error) => {
                    tracing::warn!(service = %self.service, subject = %self.subject, error = format!("{error:#}"), "cannot subscribe; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            backoff = Duration::from_millis(200);
            let mut messages = messages;
            (&mut messages)
                .take_until(shutdown.clone().cancelled_owned())
                .for_each_concurrent(self.settings.concurrency, |message| {
                    let handler = Arc::clone(&handler);
                    let this = &self;
                    async move {
                        match message {
                            Ok(message) => this.handle(message, &*handler).await,
                            Err(error) => tracing::debug!(subject = %this.subject, %error, "consumer stream hiccup"),
                        }
                    }
                                })
                .await;
            if shutdown.is_cancelled() {
                // Messages already pulled but not handled would otherwise wait out the ack
                // wait (10 s) before another replica gets them: hand them back now. At most
                // one batch, and with a delay: a message handed back at once would come
                // straight back to this still-open pull, again and again.
                for _ in 0..self.settings.concurrency {
                    let Ok(Some(Ok(message))) =
                        tokio::time::timeout(Duration::from_millis(50), messages.next()).await
                    else {
                        break;
                    };
                    let _ = message
                        .ack_with(AckKind::Nak(Some(Duration::from_secs(2))))
                        .await;
                }
            }
        }
        Ok(())
    }

    async fn handle<T, F, Fut>(&self, message: Message, handler: &F)
    where
        T: Event,
        F: Fn(Envelope<T>) -> Fut,
        Fut: Future<Output = Result<(), HandlerError>>,
    {
        let (delivered, sequence) = message
            .info()
            .map(|info| (info.delivered, info.stream_sequence))
            .unwrap_or((1, 0));
        let header = |name: &str| {
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_owned())
        };
        let request_id = header(telemetry::REQUEST_ID_HEADER);
        let span = tracing::info_span!(
            "handle_event",
            service = %self.service,
            subject = %self.subject,
            event_id = field::Empty,
            delivery = delivered,
            request_id = request_id.as_deref().unwrap_or(""),
        );
        if let Some(headers) = &message.headers {
            telemetry::set_parent_from(
                &span,
                headers.iter().flat_map(|(name, values)| {
                    values
                        .iter()
                        .map(move |value| (name.as_ref(), value.as_str()))
                }),
            );
        }
        let labels = [
            ("service", self.service.clone()),
            ("subject", self.subject.as_str().to_owned()),
        ];
        if delivered > 1 {
            metrics::counter!(m::EVENTS_REDELIVERED, &labels).increment(1);
        }
        async {
            let envelope: Envelope<T> = match serde_json::from_slice(&message.payload) {
                Ok(envelope) => envelope,
                Err(error) => {
                    tracing::error!(%error, "undecodable event: giving up on it");
                    self.finish(&message, AckKind::Term, "poison").await;
                    return;
                }
            };
            tracing::Span::current().record("event_id", field::display(envelope.id));
            let work = AssertUnwindSafe(handler(envelope)).catch_unwind();
            let work = keep_while_working(&message, work);
            let result = match request_id.clone() {
                Some(id) => telemetry::REQUEST_ID.scope(id, work).await,
                None => work.await,
            };
            let result = result
                .unwrap_or_else(|_| Err(HandlerError::Failed(anyhow::anyhow!("handler panicked"))));
            let failures = match &result {
                Err(HandlerError::Failed(_)) => self.count_failure(sequence),
                _ => 0,
            };
            match result {
                Ok(()) => {
                    tracing::debug!("event handled");
                    self.forget(sequence);
                    self.finish(&message, AckKind::Ack, "ack").await;
                }
                Err(HandlerError::NotYet(reason)) if delivered < self.settings.max_not_yet => {
                    tracing::debug!(%reason, "event arrived early; redelivering later");
                    let steps = u32::try_from(delivered).unwrap_or(u32::MAX).min(50);
                    let delay = (self.settings.not_yet_delay * steps).min(Duration::from_secs(5));
                    self.finish(&message, AckKind::Nak(Some(delay)), "not_yet")
                        .await;
                }
                Err(HandlerError::Failed(error)) if failures < self.settings.max_deliver => {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        failures,
                        "event handler failed; will retry"
                    );
                    let doublings = u32::try_from(failures - 1).unwrap_or(0).min(16);
                    let delay = (self.settings.retry_delay * 2u32.pow(doublings))
                        .min(Duration::from_secs(30));
                    self.finish(&message, AckKind::Nak(Some(delay)), "failed")
                        .await;
                }
                Err(error) => {
                    tracing::error!(
                        error = format!("{error:#}"),
                        deliveries = delivered,
                        failures,
                        "giving up on event after repeated failures"
                    );
                    self.forget(sequence);
                    self.finish(&message, AckKind::Term, "poison").await;
                }
            }
        }
        .instrument(span)
        .await;
    }

    /// Counts a failed try of the message at `sequence`; returns the count so far.
    fn count_failure(&self, sequence: u64) -> i64 {
        let mut failures = self.failures.lock().expect("failures lock");
        let count = failures.entry(sequence).or_default();
        *count += 1;
        *count
    }

    fn forget(&self, sequence: u64) {
        self.failures
            .lock()
            .expect("failures lock")
            .remove(&sequence);
    }

    async fn finish(&self, message: &Message, kind: AckKind, outcome: &'static str) {
        let labels = [
            ("service", self.service.clone()),
            ("subject", self.subject.as_str().to_owned()),
        ];
        if outcome == "poison" {
            metrics::counter!(m::EVENTS_POISONED, &labels).increment(1);
        }
        metrics::counter!(m::EVENTS_CONSUMED, "service" => self.service.clone(), "subject" => self.subject.as_str(), "outcome" => outcome)
            .increment(1);
        if let Err(error) = message.ack_with(kind).await {
            // The server redelivers after the ack wait; handlers are idempotent.
            tracing::warn!(%error, "cannot acknowledge event");
        }
    }
}

/// Runs `work`, telling the server every third of the ack wait that the message is still
/// being worked on, so a slow handler (a database failing over) keeps its message instead of
/// it being redelivered to another replica meanwhile.
async fn keep_while_working<F: Future>(message: &Message, work: F) -> F::Output {
    let every = crate::bus::ACK_WAIT / 3;
    let mut work = std::pin::pin!(work);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            output = &mut work => return output,
            _ = tick.tick() => {
                if let Err(error) = message.ack_with(AckKind::Progress).await {
                    tracing::debug!(%error, "progress ack not sent");
                }
            }
        }
    }
}
