//! Runs a service's subscriptions, one durable consumer per subject.
//!
//! A [`Subscription`] says what a service does with one event type ("on `T`, call this
//! flow"); its subject comes from the type. [`tasks`] turns a service's subscriptions into
//! the tasks that run them. For each message: decode the envelope, call the handler inside a
//! span whose parent is the trace that wrote the event, and then
//! - [`Applied`] → ack (the flow has committed by the time it returns);
//! - [`NotApplied::TooEarly`] → NAK with a short, growing delay (an event that overtook its
//!   predecessor), until the predecessor lands, or, once this replica has been told "not
//!   yet" for longer than `not_yet_deadline`, park it (its predecessor was parked or lost);
//! - [`NotApplied::Unknown`] (something that will never exist here) → park it at once;
//! - [`NotApplied::Failed`] for a transient reason (a database, Redis or network outage:
//!   [`crate::error::is_transient`]) → NAK with a backoff doubling to 30 s, for as long as it
//!   takes: an outage never loses an event;
//! - any other failure (or a panic) → NAK with backoff, and after `max_failures` such tries
//!   (transient ones do not count) park it;
//! - an undecodable message → park it at once.
//!
//! Parked events are kept with their error ([`super::parked`]), counted, and replayable; a
//! message is acknowledged only once it is applied or parked. If parking itself fails the
//! message comes back later.
//!
//! Messages are handled concurrently (up to `concurrency` at once); handlers must therefore be
//! safe to run in any order, which the version rules in `CONTRACT.md` require anyway.

use std::{
    collections::HashMap,
    panic::AssertUnwindSafe,
    sync::Arc,
    time::{Duration, Instant},
};

use async_nats::jetstream::{AckKind, Message};
use futures::{FutureExt, StreamExt, future::BoxFuture};
use ticketing_events::{Envelope, Event, Subject};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tracing::field;
use uuid::Uuid;

use super::{
    Bus,
    parked::{EVENTS_PARKED, ParkedEvent, Parking},
};
pub use crate::applied::{Applied, Applying, NotApplied};
use crate::{component::Task, error::is_transient, metrics as m, telemetry};

/// Why an event was not applied when replayed.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("undecodable: {0}")]
    Undecodable(String),
    #[error("too early: {0}")]
    TooEarly(String),
    #[error("unknown: {0}")]
    Unknown(String),
    #[error("failed: {0}")]
    Failed(String),
}

/// A decoded message, ready to apply.
struct Prepared {
    event_id: Uuid,
    work: BoxFuture<'static, Applying>,
}

type Prepare = dyn Fn(&[u8]) -> Result<Prepared, String> + Send + Sync;

/// What one service does with one event type: decode it, call the flow.
#[derive(Clone)]
pub struct Subscription {
    subject: Subject,
    prepare: Arc<Prepare>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// On event `T`, call `flow(app, event)` (with a clone of `app` each time).
    pub fn on<T, A, F, Fut>(app: &A, flow: F) -> Subscription
    where
        T: Event,
        A: Clone + Send + Sync + 'static,
        F: Fn(A, Envelope<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Applying> + Send + 'static,
    {
        let app = app.clone();
        Subscription::handler(move |event: Envelope<T>| flow(app.clone(), event))
    }

    /// On event `T`, call `handler(event)`.
    pub fn handler<T, F, Fut>(handler: F) -> Subscription
    where
        T: Event,
        F: Fn(Envelope<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Applying> + Send + 'static,
    {
        let prepare = move |payload: &[u8]| -> Result<Prepared, String> {
            let envelope: Envelope<T> =
                serde_json::from_slice(payload).map_err(|error| error.to_string())?;
            Ok(Prepared {
                event_id: envelope.id,
                work: Box::pin(handler(envelope)),
            })
        };
        Subscription {
            subject: T::SUBJECT,
            prepare: Arc::new(prepare),
        }
    }

    /// The subject it reads.
    pub fn subject(&self) -> Subject {
        self.subject
    }

    /// Applies one message's payload now (a replay of a parked event).
    pub async fn apply(&self, payload: &[u8]) -> Result<(), Refusal> {
        let prepared = (self.prepare)(payload).map_err(Refusal::Undecodable)?;
        match AssertUnwindSafe(prepared.work).catch_unwind().await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(NotApplied::TooEarly(reason))) => Err(Refusal::TooEarly(reason)),
            Ok(Err(NotApplied::Unknown(reason))) => Err(Refusal::Unknown(reason)),
            Ok(Err(NotApplied::Failed(error))) => Err(Refusal::Failed(format!("{error:#}"))),
            Err(_) => Err(Refusal::Failed("handler panicked".into())),
        }
    }
}

/// The tasks that run a service's subscriptions, one per subject (`<service>-<subject>`),
/// parking what they cannot apply in `parking`.
pub(crate) fn tasks(
    bus: &Bus,
    service: &str,
    parking: &Parking,
    subscriptions: &[Subscription],
) -> Vec<Task> {
    subscriptions
        .iter()
        .map(|subscription| {
            let listener =
                Listener::new(bus, service, subscription.clone()).with_parking(parking.clone());
            Task::new(
                super::consumer_name(service, subscription.subject()),
                move |stop| listener.run(stop),
            )
        })
        .collect()
}

/// Tuning of a listener.
#[derive(Debug, Clone)]
pub struct ListenerSettings {
    /// Failed tries of a message (in this process) for a reason that is not transient before
    /// it is parked. Transient failures and "not yet" answers do not count.
    pub max_failures: i64,
    /// How long a message may keep answering "not yet" (counted from the first time it did,
    /// in this replica) before it is parked instead of waiting on.
    pub not_yet_deadline: Duration,
    /// Delay before a "not yet" message comes back; grows with each delivery up to 5 s.
    pub not_yet_delay: Duration,
    /// Delay before a failed message comes back; doubles with each failure up to
    /// `max_retry_delay`.
    pub retry_delay: Duration,
    pub max_retry_delay: Duration,
    /// Messages handled at once by this replica.
    pub concurrency: usize,
}

impl Default for ListenerSettings {
    fn default() -> Self {
        ListenerSettings {
            max_failures: 5,
            // A predecessor still missing after ten minutes was parked or lost: waiting on
            // would hold the event forever.
            not_yet_deadline: Duration::from_secs(600),
            not_yet_delay: Duration::from_millis(100),
            retry_delay: Duration::from_millis(500),
            max_retry_delay: Duration::from_secs(30),
            concurrency: 32,
        }
    }
}

/// One service's subscription to one subject, running over its durable consumer.
#[derive(Debug, Clone)]
pub struct Listener {
    bus: Bus,
    service: String,
    subscription: Subscription,
    settings: ListenerSettings,
    /// Where what cannot be applied goes; without it, such a message is given up (logged
    /// and counted): only for tests of the runner itself.
    parking: Option<Parking>,
    /// What became of the tries of each message not yet applied, by stream sequence (kept
    /// apart from JetStream's delivery count, which counts every kind of try).
    tries: Arc<std::sync::Mutex<std::collections::HashMap<u64, Tries>>>,
}

/// The tries of one message in this replica.
#[derive(Debug, Clone, Copy)]
struct Tries {
    /// Failures for a reason that is not transient: parked at `max_failures`.
    failures: i64,
    /// Failures for a transient reason: only the backoff grows.
    outages: i64,
    /// When it first answered "not yet".
    waiting_since: Option<Instant>,
    /// When it was last tried here; an entry not tried for long is a message another replica
    /// finished, and is forgotten.
    seen: Instant,
}

/// How long one pull request waits for messages before the next replaces it.
const PULL_EXPIRES: Duration = Duration::from_secs(10);
/// How often the consumer's leader says a waiting pull is alive; two missed in a row end
/// the pull (see [`Listener::run`]).
const PULL_HEARTBEAT: Duration = Duration::from_secs(1);

/// Messages tracked at most before entries not tried for [`STALE_TRIES`] are forgotten.
const MAX_TRACKED_TRIES: usize = 10_000;
const STALE_TRIES: Duration = Duration::from_secs(600);

/// What to do with a message that was not applied.
enum Next {
    Retry(Duration, &'static str),
    Park(String, &'static str),
}

impl Listener {
    pub fn new(bus: &Bus, service: &str, subscription: Subscription) -> Self {
        Listener {
            bus: bus.clone(),
            service: service.to_owned(),
            subscription,
            settings: ListenerSettings::default(),
            parking: None,
            tries: Arc::default(),
        }
    }

    pub fn with_settings(mut self, settings: ListenerSettings) -> Self {
        self.settings = settings;
        self
    }

    pub fn with_parking(mut self, parking: Parking) -> Self {
        self.parking = Some(parking);
        self
    }

    fn subject(&self) -> Subject {
        self.subscription.subject
    }

    /// Creates the durable consumer now, so events published from here on are kept for this
    /// service even before [`Listener::run`] starts pulling.
    pub async fn ensure_consumer(&self) -> anyhow::Result<()> {
        self.bus
            .consumer(&self.service, self.subject())
            .await
            .map(drop)
    }

    /// Handles messages until `shutdown`, then lets in-flight handlers finish.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let _ = m::handle(); // counters recorded before the recorder exists would be lost
        let mut backoff = Duration::from_millis(200);
        while !shutdown.is_cancelled() {
            let messages = async {
                let consumer = self.bus.consumer(&self.service, self.subject()).await?;
                // Pull no more than we handle at once, so replicas share the work and a slow
                // replica does not sit on messages another could handle.
                // Short pulls with frequent heartbeats: a pull request held by a consumer
                // leader that died (a cluster node killed) is noticed within two heartbeats,
                // and the stream is then pulled again from whichever node leads it now.
                anyhow::Ok(
                    consumer
                        .stream()
                        .max_messages_per_batch(self.settings.concurrency)
                        .expires(PULL_EXPIRES)
                        .heartbeat(PULL_HEARTBEAT)
                        .messages()
                        .await?,
                )
            };
            let messages = match messages.await {
                Ok(messages) => messages,
                Err(error) => {
                    tracing::warn!(service = %self.service, subject = %self.subject(), error = format!("{error:#}"), "cannot subscribe; retrying");
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
            // The first error (missed heartbeats, no responders while the consumer has no
            // leader, a failed pull) ends this pull: the messages in hand are finished, then
            // the consumer is looked up and pulled afresh. The client's own re-pull covers
            // only a reconnect, not a leader that moved while the connection stayed up.
            let mut interrupted = None;
            (&mut messages)
                .take_until(shutdown.clone().cancelled_owned())
                .take_while(|message| {
                    let ok = message.is_ok();
                    if let Err(error) = message {
                        interrupted = Some(error.to_string());
                    }
                    std::future::ready(ok)
                })
                .for_each_concurrent(self.settings.concurrency, |message| {
                    let this = &self;
                    async move {
                        if let Ok(message) = message {
                            this.handle(message).await;
                        }
                    }
                })
                .await;
            if let Some(error) = interrupted {
                tracing::info!(service = %self.service, subject = %self.subject(), %error, "pulling the consumer again");
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
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

    async fn handle(&self, message: Message) {
        let (delivered, sequence) = message
            .info()
            .map(|info| (info.delivered, info.stream_sequence))
            .unwrap_or((1, 0));
        // The first value of each header, by lower-case name: what `context_headers` wrote.
        let headers: HashMap<String, String> = message
            .headers
            .iter()
            .flat_map(|headers| headers.iter())
            .filter_map(|(name, values)| {
                let value = values.first()?;
                Some((
                    AsRef::<str>::as_ref(name).to_ascii_lowercase(),
                    value.as_str().to_owned(),
                ))
            })
            .collect();
        let span = tracing::info_span!(
            "handle_event",
            service = %self.service,
            subject = %self.subject(),
            event_id = field::Empty,
            delivery = delivered,
            request_id = field::Empty,
        );
        if delivered > 1 {
            metrics::counter!(m::EVENTS_REDELIVERED, &self.labels()).increment(1);
        }
        let handling = async {
            let prepared = match (self.subscription.prepare)(&message.payload) {
                Ok(prepared) => prepared,
                Err(error) => {
                    let next = Next::Park(format!("undecodable: {error}"), "undecodable");
                    self.settle(&message, next, None, delivered, sequence).await;
                    return;
                }
            };
            let event_id = prepared.event_id;
            tracing::Span::current().record("event_id", field::display(event_id));
            let work = AssertUnwindSafe(prepared.work).catch_unwind();
            let result = keep_while_working(&message, work)
                .await
                .unwrap_or_else(|_| Err(NotApplied::Failed(anyhow::anyhow!("handler panicked"))));
            let next = match result {
                Ok(applied) => {
                    tracing::debug!(?applied, "event handled");
                    self.forget(sequence);
                    self.finish(&message, AckKind::Ack, "ack").await;
                    return;
                }
                Err(NotApplied::Unknown(reason)) => {
                    Next::Park(format!("unknown: {reason}"), "unknown")
                }
                Err(NotApplied::TooEarly(reason)) => {
                    let waited = self.try_once(sequence, |tries, now| {
                        now.duration_since(*tries.waiting_since.get_or_insert(now))
                    });
                    if waited > self.settings.not_yet_deadline {
                        Next::Park(
                            format!(
                                "too early for {waited:?}, its predecessor never came: {reason}"
                            ),
                            "too_early",
                        )
                    } else {
                        tracing::debug!(%reason, "event arrived early; redelivering later");
                        let steps = u32::try_from(delivered).unwrap_or(u32::MAX).min(50);
                        let delay =
                            (self.settings.not_yet_delay * steps).min(Duration::from_secs(5));
                        Next::Retry(delay, "not_yet")
                    }
                }
                Err(NotApplied::Failed(error)) => {
                    let transient = is_transient(&error);
                    let tries = self.try_once(sequence, |tries, _| {
                        if transient {
                            tries.outages += 1;
                        } else {
                            tries.failures += 1;
                        }
                        *tries
                    });
                    let counted = if transient {
                        tries.outages
                    } else {
                        tries.failures
                    };
                    let doublings = u32::try_from(counted - 1).unwrap_or(0).min(16);
                    let delay = (self.settings.retry_delay * 2u32.pow(doublings))
                        .min(self.settings.max_retry_delay);
                    if transient {
                        tracing::warn!(
                            error = format!("{error:#}"),
                            tries = tries.outages,
                            "a dependency is unavailable; the event will be retried until it is back"
                        );
                        Next::Retry(delay, "unavailable")
                    } else if tries.failures < self.settings.max_failures {
                        tracing::warn!(
                            error = format!("{error:#}"),
                            failures = tries.failures,
                            "event handler failed; will retry"
                        );
                        Next::Retry(delay, "failed")
                    } else {
                        Next::Park(
                            format!("failed {} times: {error:#}", tries.failures),
                            "failing",
                        )
                    }
                }
            };
            self.settle(&message, next, Some(event_id), delivered, sequence)
                .await;
        };
        telemetry::continuing(span, &headers, handling).await;
    }

    /// Hands a message back for later, or parks it (and acknowledges it once parked).
    async fn settle(
        &self,
        message: &Message,
        next: Next,
        event_id: Option<Uuid>,
        delivered: i64,
        sequence: u64,
    ) {
        let (error, reason) = match next {
            Next::Retry(delay, outcome) => {
                self.finish(message, AckKind::Nak(Some(delay)), outcome)
                    .await;
                return;
            }
            Next::Park(error, reason) => (error, reason),
        };
        let labels = [
            ("service", self.service.clone()),
            ("subject", self.subject().as_str().to_owned()),
            ("reason", reason.to_owned()),
        ];
        let Some(parking) = &self.parking else {
            tracing::error!(%error, "cannot apply this event and there is nowhere to park it: giving up on it");
            metrics::counter!(m::EVENTS_POISONED, &self.labels()).increment(1);
            self.forget(sequence);
            self.finish(message, AckKind::Term, "poison").await;
            return;
        };
        let subject = self.subject().as_str();
        let parked = ParkedEvent {
            id: ParkedEvent::id_for(&self.service, subject, sequence, &message.payload),
            service: self.service.clone(),
            subject: subject.to_owned(),
            event_id,
            payload: message.payload.to_vec(),
            error: error.clone(),
            deliveries: delivered,
            parked_at: OffsetDateTime::now_utc(),
            replays: 0,
        };
        match parking.park(&parked).await {
            Ok(()) => {
                tracing::error!(%error, parked = %parked.id, "event parked: it can be replayed once its cause is fixed (ticketing events replay)");
                metrics::counter!(EVENTS_PARKED, &labels).increment(1);
                self.forget(sequence);
                self.finish(message, AckKind::Term, "parked").await;
            }
            Err(park_error) => {
                // Never dropped: it comes back, and is parked (or applied) then.
                tracing::error!(
                    error = format!("{park_error:#}"),
                    "cannot park the event; it will come back"
                );
                self.finish(
                    message,
                    AckKind::Nak(Some(self.settings.max_retry_delay)),
                    "failed",
                )
                .await;
            }
        }
    }

    fn labels(&self) -> [(&'static str, String); 2] {
        [
            ("service", self.service.clone()),
            ("subject", self.subject().as_str().to_owned()),
        ]
    }

    /// Records a try of the message at `sequence` with `update`, and returns what it says.
    fn try_once<T>(&self, sequence: u64, update: impl FnOnce(&mut Tries, Instant) -> T) -> T {
        let now = Instant::now();
        let mut tries = self.tries.lock().expect("tries lock");
        if tries.len() >= MAX_TRACKED_TRIES {
            tries.retain(|_, t| now.duration_since(t.seen) < STALE_TRIES);
        }
        let entry = tries.entry(sequence).or_insert(Tries {
            failures: 0,
            outages: 0,
            waiting_since: None,
            seen: now,
        });
        entry.seen = now;
        update(entry, now)
    }

    fn forget(&self, sequence: u64) {
        self.tries.lock().expect("tries lock").remove(&sequence);
    }

    async fn finish(&self, message: &Message, kind: AckKind, outcome: &'static str) {
        metrics::counter!(m::EVENTS_CONSUMED, "service" => self.service.clone(), "subject" => self.subject().as_str(), "outcome" => outcome)
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
