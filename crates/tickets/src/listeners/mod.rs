//! Order events that move tickets: each calls one flow; the runner acks after the flow's
//! transaction committed, and parks what can never be applied.
//!
//! - `order.created` → reserve the ticket ([`flows::reserve_for_order`]);
//! - `order.cancelled` → release it if that order holds it ([`flows::release_for_order`]);
//! - `order.refunded` → the same: a refunded order's ticket is on sale again;
//! - `order.completed` → the ticket is sold ([`flows::sell_for_order`]).

use ticketing_common::bus::listener::{Applying, Subscription};
use ticketing_events::{Envelope, OrderCancelled, OrderCompleted, OrderCreated, OrderRefunded};

use crate::{app::Tickets, flows};

/// Every event tickets reads, and the flow each calls.
pub fn subscriptions(app: &Tickets) -> Vec<Subscription> {
    vec![
        Subscription::on(app, order_created),
        Subscription::on(app, order_cancelled),
        Subscription::on(app, order_refunded),
        Subscription::on(app, order_completed),
    ]
}

/// `order.created` → reserve the ticket.
async fn order_created(app: Tickets, event: Envelope<OrderCreated>) -> Applying {
    flows::reserve_for_order(&app, event.data.ticket.id, event.data.id).await
}

/// `order.cancelled` → release the ticket if that order holds it.
async fn order_cancelled(app: Tickets, event: Envelope<OrderCancelled>) -> Applying {
    flows::release_for_order(&app, event.data.ticket.id, event.data.id).await
}

/// `order.refunded` → release the ticket if that order holds it.
async fn order_refunded(app: Tickets, event: Envelope<OrderRefunded>) -> Applying {
    flows::release_for_order(&app, event.data.ticket.id, event.data.id).await
}

/// `order.completed` → the ticket is sold.
async fn order_completed(app: Tickets, event: Envelope<OrderCompleted>) -> Applying {
    flows::sell_for_order(&app, event.data.ticket.id, event.data.id).await
}
