//! The event bus against the real PostgreSQL and NATS: outbox exactly-once, NATS outages,
//! listener acks, retries, "not yet", poison messages, shared consumers, and trace context
//! carried from an HTTP request to the listener that handles its event.

mod cluster;
mod helpers;
mod listener;
mod outbox;
mod tracing_across;
