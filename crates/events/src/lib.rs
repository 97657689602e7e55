//! The events Ticketing services exchange, exactly as `CONTRACT.md` (Events) describes them.
//!
//! This crate owns the wire format and nothing else: each payload is a typed struct bound to
//! its subject through [`Event`], and every message travels inside an [`Envelope`]
//! `{id, type, occurredAt, data}`. It performs no I/O; the bus in `ticketing-common` moves
//! these values.

mod envelope;
mod money;
mod payloads;
mod subject;

pub use envelope::{Envelope, RawEnvelope};
pub use money::Cents;
pub use payloads::*;
pub use subject::Subject;

/// A payload bound to the subject it is published on.
pub trait Event: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static {
    /// The subject, relative to the namespace prefix.
    const SUBJECT: Subject;
}
