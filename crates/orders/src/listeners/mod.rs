//! Events that change orders' state: each decodes the event and calls a flow; the runner acks
//! after the flow's transaction committed, redelivers "not yet" shortly, and retries failures
//! a bounded number of times.
//!
//! - `ticket.created`, `ticket.updated` → the ticket replica ([`flows::add_ticket`],
//!   [`flows::update_ticket`]);
//! - `expiration.complete` → cancel the order if still live ([`flows::expire_order`]);
//! - `payment.created` → complete the order, or record a payment for a cancelled one
//!   ([`flows::complete_for_payment`]).

use ticketing_common::{
    CancellationToken,
    bus::{Bus, listener::Listener},
};
use ticketing_events::{
    Envelope, ExpirationComplete, PaymentCreated, Subject, TicketCreated, TicketUpdated,
};

use crate::{NAME, Orders, flows};

/// `ticket.created` → learn the ticket.
pub async fn ticket_created(
    app: Orders,
    bus: Bus,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    Listener::new(&bus, NAME, Subject::TicketCreated)
        .run(
            move |event: Envelope<TicketCreated>| {
                let app = app.clone();
                async move { flows::add_ticket(&app, &event.data).await }
            },
            shutdown,
        )
        .await
}

/// `ticket.updated` → apply the ticket's next version.
pub async fn ticket_updated(
    app: Orders,
    bus: Bus,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    Listener::new(&bus, NAME, Subject::TicketUpdated)
        .run(
            move |event: Envelope<TicketUpdated>| {
                let app = app.clone();
                async move { flows::update_ticket(&app, &event.data).await }
            },
            shutdown,
        )
        .await
}

/// `expiration.complete` → cancel the order if it is still unpaid.
pub async fn expiration_complete(
    app: Orders,
    bus: Bus,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    Listener::new(&bus, NAME, Subject::ExpirationComplete)
        .run(
            move |event: Envelope<ExpirationComplete>| {
                let app = app.clone();
                async move { flows::expire_order(&app, event.data.order_id).await }
            },
            shutdown,
        )
        .await
}

/// `payment.created` → mark the order paid.
pub async fn payment_created(
    app: Orders,
    bus: Bus,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    Listener::new(&bus, NAME, Subject::PaymentCreated)
        .run(
            move |event: Envelope<PaymentCreated>| {
                let app = app.clone();
                async move { flows::complete_for_payment(&app, &event.data).await }
            },
            shutdown,
        )
        .await
}
