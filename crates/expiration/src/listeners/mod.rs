//! The one event expiration reads: `order.created` schedules the order's expiry at its
//! `expiresAt`. The job keeps the event's trace context and request id, so the
//! `expiration.complete` it fires later continues the purchase's trace.

use ticketing_common::bus::listener::{Applied, Applying, Subscription};
use ticketing_events::{Envelope, OrderCreated};

use crate::queue::Queue;

/// Every event expiration reads, and what each does.
pub fn subscriptions(queue: &Queue) -> Vec<Subscription> {
    vec![Subscription::on(queue, order_created)]
}

/// `order.created` → schedule the expiry. A redelivered event finds the job (or its
/// tombstone) and adds nothing.
async fn order_created(queue: Queue, event: Envelope<OrderCreated>) -> Applying {
    let due_ms = (event.data.expires_at.unix_timestamp_nanos() / 1_000_000) as i64;
    let added = queue.enqueue(event.data.id, due_ms).await?;
    tracing::info!(order_id = %event.data.id, added, "expiry scheduled");
    Ok(if added {
        Applied::Now
    } else {
        Applied::Already
    })
}
