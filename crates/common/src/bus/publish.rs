//! The one way an event is handed to JetStream.
//!
//! Both publishers use it: the outbox [`Relay`](super::outbox::Relay) (rows written by flows)
//! and expiration's worker (jobs fired from its queue). Each message carries `Nats-Msg-Id` =
//! event id, so a publish repeated after a crash is dropped by the server, and the trace
//! context and request id of the work that caused the event, so a listener continues that
//! trace. A publish counts only once JetStream has acknowledged it.

use std::{collections::HashMap, future::Future};

use anyhow::Context;
use async_nats::{HeaderMap, jetstream::message::PublishMessage};
use ticketing_events::{Envelope, Event, Subject};
use uuid::Uuid;

use super::Bus;
use crate::telemetry;

/// An event on its way out: everything a message is made of (and an outbox row's columns).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Outgoing {
    /// The event id; also the message id JetStream deduplicates on.
    pub id: Uuid,
    /// The subject without the namespace prefix (`ticket.created`).
    pub subject: String,
    /// The whole envelope as JSON, byte for byte what listeners receive.
    pub payload: String,
    /// `traceparent` and `x-request-id` of the work that caused the event.
    #[sqlx(json)]
    pub headers: HashMap<String, String>,
}

impl Outgoing {
    /// An envelope ready to send as part of the work in progress: it carries the current
    /// span's trace context and the current request id.
    pub fn here<T: Event>(envelope: &Envelope<T>) -> anyhow::Result<Outgoing> {
        Outgoing::event(
            envelope,
            telemetry::context_headers(&tracing::Span::current()),
        )
    }

    /// An envelope ready to send, with the headers of the work causing it.
    fn event<T: Event>(
        envelope: &Envelope<T>,
        headers: HashMap<String, String>,
    ) -> anyhow::Result<Outgoing> {
        Ok(Outgoing {
            id: envelope.id,
            subject: T::SUBJECT.as_str().to_owned(),
            payload: serde_json::to_string(envelope).context("cannot encode an event")?,
            headers,
        })
    }
}

impl Bus {
    /// Sends one event and returns the wait for JetStream's acknowledgement, so a caller
    /// with a batch sends them all before waiting (one round trip, not one per event).
    pub async fn send(
        &self,
        event: &Outgoing,
    ) -> anyhow::Result<impl Future<Output = anyhow::Result<()>> + Send + use<>> {
        let mut headers = HeaderMap::new();
        for (name, value) in &event.headers {
            headers.insert(name.as_str(), value.as_str());
        }
        let message = PublishMessage::build()
            .payload(event.payload.clone().into())
            .headers(headers)
            .message_id(event.id.to_string());
        let subject = Subject::parse(&event.subject)
            .map(|s| self.subject(s))
            .unwrap_or_else(|| format!("{}.{}", self.prefix, event.subject));
        let ack = self
            .jetstream
            .send_publish(subject, message)
            .await
            .context("cannot publish to NATS")?;
        Ok(async move {
            ack.await
                .map(drop)
                .context("JetStream did not acknowledge a publish")
        })
    }

    /// Sends one event and waits until JetStream has stored it.
    pub async fn publish(&self, event: &Outgoing) -> anyhow::Result<()> {
        self.send(event).await?.await
    }
}
