//! Events that change orders' state: each calls one flow; the runner acks after the flow's
//! transaction committed, redelivers "not yet" shortly, retries transient failures for as
//! long as they last, and parks what can never be applied.
//!
//! - `ticket.created`, `ticket.updated` → the ticket replica ([`flows::add_ticket`],
//!   [`flows::update_ticket`]);
//! - `ticket.withdrawn` → the replica, and cancel an order placed for it at the same instant
//!   ([`flows::withdraw_ticket`]);
//! - `expiration.complete` → cancel the order if still live ([`flows::expire_order`]);
//! - `payment.created` → complete the order ([`flows::complete_for_payment`]);
//! - `payment.refunded` → mark a paid order refunded ([`flows::refund_for_payment`]).

use ticketing_common::bus::listener::{Applying, Subscription};
use ticketing_events::{
    Envelope, ExpirationComplete, PaymentCreated, PaymentRefunded, TicketCreated, TicketUpdated,
    TicketWithdrawn,
};

use crate::{app::Orders, flows};

/// Every event orders reads, and the flow each calls.
pub fn subscriptions(app: &Orders) -> Vec<Subscription> {
    vec![
        Subscription::on(app, ticket_created),
        Subscription::on(app, ticket_updated),
        Subscription::on(app, ticket_withdrawn),
        Subscription::on(app, expiration_complete),
        Subscription::on(app, payment_created),
        Subscription::on(app, payment_refunded),
    ]
}

/// `ticket.created` → learn the ticket.
async fn ticket_created(app: Orders, event: Envelope<TicketCreated>) -> Applying {
    flows::add_ticket(&app, &event.data).await
}

/// `ticket.updated` → apply the ticket's next version.
async fn ticket_updated(app: Orders, event: Envelope<TicketUpdated>) -> Applying {
    flows::update_ticket(&app, &event.data).await
}

/// `ticket.withdrawn` → the replica, and cancel an order holding the ticket.
async fn ticket_withdrawn(app: Orders, event: Envelope<TicketWithdrawn>) -> Applying {
    flows::withdraw_ticket(&app, &event.data).await
}

/// `expiration.complete` → cancel the order if it is still unpaid.
async fn expiration_complete(app: Orders, event: Envelope<ExpirationComplete>) -> Applying {
    flows::expire_order(&app, event.data.order_id).await
}

/// `payment.created` → mark the order paid.
async fn payment_created(app: Orders, event: Envelope<PaymentCreated>) -> Applying {
    flows::complete_for_payment(&app, &event.data).await
}

/// `payment.refunded` → mark the order refunded.
async fn payment_refunded(app: Orders, event: Envelope<PaymentRefunded>) -> Applying {
    flows::refund_for_payment(&app, &event.data).await
}
