//! Order events that move tickets: each decodes the event and calls a flow; the runner acks
//! after the flow's transaction committed.

use ticketing_common::{
    CancellationToken,
    bus::{Bus, listener::Listener},
};
use ticketing_events::{Envelope, OrderCancelled, OrderCreated, Subject};

use crate::{NAME, Tickets, flows};

/// `order.created` → reserve the ticket.
pub async fn order_created(
    app: Tickets,
    bus: Bus,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    Listener::new(&bus, NAME, Subject::OrderCreated)
        .run(
            move |event: Envelope<OrderCreated>| {
                let app = app.clone();
                async move { flows::reserve_for_order(&app, event.data.ticket.id, event.data.id).await }
            },
            shutdown,
        )
        .await
}

/// `order.cancelled` → release the ticket if that order holds it.
pub async fn order_cancelled(
    app: Tickets,
    bus: Bus,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    Listener::new(&bus, NAME, Subject::OrderCancelled)
        .run(
            move |event: Envelope<OrderCancelled>| {
                let app = app.clone();
                async move { flows::release_for_order(&app, event.data.ticket.id, event.data.id).await }
            },
            shutdown,
        )
        .await
}
