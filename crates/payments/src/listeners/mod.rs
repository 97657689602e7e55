//! Events that keep the order replica: each decodes the event and calls a flow; the runner
//! acks after the flow's write committed and redelivers "not yet" shortly.
//!
//! - `order.created` → learn the order ([`flows::add_order`]);
//! - `order.cancelled` → it can no longer be paid ([`flows::cancel_order`]).

use ticketing_common::{
    CancellationToken,
    bus::{Bus, listener::Listener},
};
use ticketing_events::{Envelope, OrderCancelled, OrderCreated, Subject};

use crate::{NAME, Payments, flows};

/// `order.created` → learn the order.
pub async fn order_created(
    app: Payments,
    bus: Bus,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    Listener::new(&bus, NAME, Subject::OrderCreated)
        .run(
            move |event: Envelope<OrderCreated>| {
                let app = app.clone();
                async move { flows::add_order(&app, &event.data).await }
            },
            shutdown,
        )
        .await
}

/// `order.cancelled` → mark the order cancelled.
pub async fn order_cancelled(
    app: Payments,
    bus: Bus,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    Listener::new(&bus, NAME, Subject::OrderCancelled)
        .run(
            move |event: Envelope<OrderCancelled>| {
                let app = app.clone();
                async move { flows::cancel_order(&app, &event.data).await }
            },
            shutdown,
        )
        .await
}
