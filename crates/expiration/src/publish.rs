//! What firing a job means in production: publishing `expiration.complete` through the
//! bus's one publish path, with the trace context and request id the worker restored from
//! the job.

use ticketing_common::bus::{Bus, publish::Outgoing};
use ticketing_events::{Envelope, ExpirationComplete};
use uuid::Uuid;

use crate::worker::Fire;

/// Fires a job by publishing `expiration.complete` and waiting for JetStream's ack. The event
/// id (and so the message id) is derived from the order id, so a job fired twice (a lost
/// lease) is one message.
#[derive(Clone, Debug)]
pub struct PublishExpiration {
    pub bus: Bus,
}

/// The event id of an order's expiry: the same every time it fires.
pub fn expiration_event_id(order_id: Uuid) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("ticketing:expiration:{order_id}").as_bytes(),
    )
}

impl Fire for PublishExpiration {
    async fn fire(&self, order_id: Uuid) -> anyhow::Result<()> {
        let envelope = Envelope::with_id(
            expiration_event_id(order_id),
            ExpirationComplete { order_id },
        );
        self.bus.publish(&Outgoing::here(&envelope)?).await
    }
}
