//! Events that keep the order replica: each calls one flow; the runner acks after the flow's
//! write committed, redelivers "not yet" shortly, and parks what can never be applied.
//!
//! - `order.created` → learn the order ([`flows::add_order`]);
//! - `order.completed` → the replica's version keeps step ([`flows::complete_order`]);
//! - `order.cancelled` → it can no longer be paid ([`flows::cancel_order`]).

use ticketing_common::bus::listener::{Applying, Subscription};
use ticketing_events::{Envelope, OrderCancelled, OrderCompleted, OrderCreated};

use crate::{app::Payments, flows};

/// Every event payments reads, and the flow each calls.
pub fn subscriptions(app: &Payments) -> Vec<Subscription> {
    vec![
        Subscription::on(app, order_created),
        Subscription::on(app, order_completed),
        Subscription::on(app, order_cancelled),
    ]
}

/// `order.created` → learn the order.
async fn order_created(app: Payments, event: Envelope<OrderCreated>) -> Applying {
    flows::add_order(&app, &event.data).await
}

/// `order.completed` → the replica's version keeps step.
async fn order_completed(app: Payments, event: Envelope<OrderCompleted>) -> Applying {
    flows::complete_order(&app, &event.data).await
}

/// `order.cancelled` → the order can no longer be paid.
async fn order_cancelled(app: Payments, event: Envelope<OrderCancelled>) -> Applying {
    flows::cancel_order(&app, &event.data).await
}
