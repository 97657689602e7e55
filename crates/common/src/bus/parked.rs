//! Events a listener could not apply, kept for a person instead of dropped: an undecodable
//! message, a handler that keeps failing for a reason retrying cannot change, an event that
//! waited too long for its predecessor. Each is parked with its payload and error, counted in
//! `events_parked_total`, and can be replayed through the same handler once the cause is
//! fixed (`ticketing events parked`, `ticketing events replay`).
//!
//! Services with a database park in its `parked_events` table (made with the outbox
//! schema); expiration parks in its queue Redis, a hash under `<ns>:<service>:parked`.

use crate::redis::Redis;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::listener::Subscription;

/// Counts events parked, by service, subject and why (`undecodable`, `unknown`, `failing`,
/// `too_early`).
pub const EVENTS_PARKED: &str = "events_parked_total";

/// One parked event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ParkedEvent {
    /// Derived from the service, subject, stream sequence and payload ([`ParkedEvent::id_for`]):
    /// parking the same message twice (a redelivery) keeps one record.
    pub id: Uuid,
    /// The service whose handler refused it.
    pub service: String,
    /// The event's subject without the namespace, `order.created`.
    pub subject: String,
    /// The envelope's id, when it could be read.
    pub event_id: Option<Uuid>,
    /// The message exactly as it arrived.
    #[serde(with = "hex_bytes")]
    pub payload: Vec<u8>,
    /// Why it was parked, or why its last replay failed.
    pub error: String,
    /// Deliveries before it was parked.
    pub deliveries: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub parked_at: OffsetDateTime,
    /// Replays tried so far.
    pub replays: i64,
}

impl ParkedEvent {
    /// The id of the message at `sequence` of the stream with `payload`, parked by `service`:
    /// parking the same message again finds its row, while another message that happens to
    /// have the same sequence (a recreated stream, a message whose sequence could not be
    /// read) gets a row of its own.
    pub fn id_for(service: &str, subject: &str, sequence: u64, payload: &[u8]) -> Uuid {
        let mut name = format!("ticketing:parked:{service}:{subject}:{sequence}:").into_bytes();
        name.extend_from_slice(payload);
        Uuid::new_v5(&Uuid::NAMESPACE_URL, &name)
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

/// Where a service parks.
#[derive(Clone)]
pub enum Parking {
    /// The service's `parked_events` table.
    Postgres(PgPool),
    /// A hash in Redis (the expiration queue's Redis, which never evicts), under
    /// `<ns>:<service>:parked`.
    Redis { redis: Redis, key: String },
}

impl std::fmt::Debug for Parking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Parking::Postgres(_) => f.write_str("Parking::Postgres"),
            Parking::Redis { key, .. } => write!(f, "Parking::Redis({key})"),
        }
    }
}

impl Parking {
    /// Keeps `event` (once: a second park of the same message changes nothing).
    pub async fn park(&self, event: &ParkedEvent) -> anyhow::Result<()> {
        match self {
            Parking::Postgres(pool) => {
                sqlx::query(
                    "INSERT INTO parked_events
                       (id, service, subject, event_id, payload, error, deliveries, parked_at, replays)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(event.id)
                .bind(&event.service)
                .bind(&event.subject)
                .bind(event.event_id)
                .bind(&event.payload)
                .bind(&event.error)
                .bind(event.deliveries)
                .bind(event.parked_at)
                .bind(event.replays)
                .execute(pool)
                .await
                .context("cannot park the event")?;
            }
            Parking::Redis { redis, key } => {
                let mut redis = redis.clone();
                let _: bool = redis::cmd("HSETNX")
                    .arg(key)
                    .arg(event.id.to_string())
                    .arg(serde_json::to_string(event)?)
                    .query_async(&mut redis)
                    .await
                    .context("cannot park the event")?;
            }
        }
        Ok(())
    }

    /// Every parked event, oldest first.
    pub async fn list(&self) -> anyhow::Result<Vec<ParkedEvent>> {
        match self {
            Parking::Postgres(pool) => sqlx::query_as(
                "SELECT id, service, subject, event_id, payload, error, deliveries, parked_at, replays
                 FROM parked_events ORDER BY parked_at, id",
            )
            .fetch_all(pool)
            .await
            .context("cannot read parked events"),
            Parking::Redis { redis, key } => {
                let mut redis = redis.clone();
                let values: Vec<String> = redis::cmd("HVALS")
                    .arg(key)
                    .query_async(&mut redis)
                    .await
                    .context("cannot read parked events")?;
                let mut events = values
                    .iter()
                    .map(|value| serde_json::from_str(value))
                    .collect::<Result<Vec<ParkedEvent>, _>>()?;
                events.sort_by_key(|event| (event.parked_at, event.id));
                Ok(events)
            }
        }
    }

    /// Forgets a parked event (it was applied); `false` if there was none.
    pub async fn remove(&self, id: Uuid) -> anyhow::Result<bool> {
        Ok(match self {
            Parking::Postgres(pool) => {
                sqlx::query("DELETE FROM parked_events WHERE id = $1")
                    .bind(id)
                    .execute(pool)
                    .await?
                    .rows_affected()
                    == 1
            }
            Parking::Redis { redis, key } => {
                let mut redis = redis.clone();
                redis::cmd("HDEL")
                    .arg(key)
                    .arg(id.to_string())
                    .query_async::<i64>(&mut redis)
                    .await?
                    == 1
            }
        })
    }

    /// Records a replay that failed again, with its error.
    async fn replay_failed(&self, event: &ParkedEvent, error: &str) -> anyhow::Result<()> {
        match self {
            Parking::Postgres(pool) => {
                sqlx::query(
                    "UPDATE parked_events SET error = $2, replays = replays + 1 WHERE id = $1",
                )
                .bind(event.id)
                .bind(error)
                .execute(pool)
                .await?;
            }
            Parking::Redis { redis, key } => {
                let updated = ParkedEvent {
                    error: error.to_owned(),
                    replays: event.replays + 1,
                    ..event.clone()
                };
                let mut redis = redis.clone();
                let _: i64 = redis::cmd("HSET")
                    .arg(key)
                    .arg(event.id.to_string())
                    .arg(serde_json::to_string(&updated)?)
                    .query_async(&mut redis)
                    .await?;
            }
        }
        Ok(())
    }
}

/// How a replay went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    /// Applied; the record is gone.
    Applied,
    /// Refused again; the record stays, with this error.
    Refused(String),
    /// No subscription of the service handles its subject (a subject it no longer reads).
    NoHandler,
}

/// Applies a parked event through the service's own handler for its subject; forgets it if
/// that worked, records the new error otherwise.
pub async fn replay(
    parking: &Parking,
    subscriptions: &[Subscription],
    event: &ParkedEvent,
) -> anyhow::Result<Replayed> {
    let Some(subscription) = subscriptions
        .iter()
        .find(|s| s.subject().as_str() == event.subject)
    else {
        return Ok(Replayed::NoHandler);
    };
    match subscription.apply(&event.payload).await {
        Ok(()) => {
            parking.remove(event.id).await?;
            tracing::info!(parked = %event.id, subject = %event.subject, "parked event replayed");
            Ok(Replayed::Applied)
        }
        Err(refusal) => {
            let error = refusal.to_string();
            parking.replay_failed(event, &error).await?;
            Ok(Replayed::Refused(error))
        }
    }
}

/// The `parked_events` table, made with the outbox schema.
pub(crate) const SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS parked_events (
    id          uuid PRIMARY KEY,
    service     text NOT NULL,
    subject     text NOT NULL,
    event_id    uuid,
    payload     bytea NOT NULL,
    error       text NOT NULL,
    deliveries  bigint NOT NULL,
    parked_at   timestamptz NOT NULL DEFAULT now(),
    replays     bigint NOT NULL DEFAULT 0
);
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_parked_again_finds_its_record_and_another_at_the_same_sequence_does_not() {
        let first = ParkedEvent::id_for("orders", "order.created", 7, b"{\"a\":1}");
        assert_eq!(
            first,
            ParkedEvent::id_for("orders", "order.created", 7, b"{\"a\":1}")
        );
        // A recreated stream starts its sequence again; a message whose sequence could not be
        // read counts as 0. Neither may take the place of what is parked already.
        assert_ne!(
            first,
            ParkedEvent::id_for("orders", "order.created", 7, b"{\"a\":2}")
        );
        assert_ne!(
            ParkedEvent::id_for("orders", "order.created", 0, b"one"),
            ParkedEvent::id_for("orders", "order.created", 0, b"two")
        );
        assert_ne!(
            first,
            ParkedEvent::id_for("payments", "order.created", 7, b"{\"a\":1}")
        );
    }
}
