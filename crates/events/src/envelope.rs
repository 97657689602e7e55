//! The envelope every event travels in: `{id, type, occurredAt, data}`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Event;

/// A typed event with its metadata. `id` is unique per event and doubles as the JetStream
/// `Nats-Msg-Id`, so a republished event is dropped by the server's duplicate window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub data: T,
}

/// An envelope whose payload is not decoded yet.
pub type RawEnvelope = Envelope<serde_json::Value>;

impl<T: Event> Envelope<T> {
    /// Wraps a payload in a new envelope with a fresh, time-ordered id.
    pub fn new(data: T) -> Self {
        Self::with_id(Uuid::now_v7(), data)
    }

    /// Wraps a payload with a caller-chosen id, for events that must be deterministic
    /// (a retried producer must produce the same id so the broker drops the copy).
    pub fn with_id(id: Uuid, data: T) -> Self {
        Envelope {
            id,
            kind: T::SUBJECT.as_str().to_owned(),
            occurred_at: OffsetDateTime::now_utc(),
            data,
        }
    }
}
