//! Recording a charge that succeeded: the payment becomes `succeeded`, the order replica
//! `complete`, and `payment.created` enters the outbox, all in one transaction. Whoever
//! records first (the paying request, a request that took its attempt over, a webhook, the
//! reconciler) does it; the others find it done. A charge that lands on an order already
//! cancelled records, in the same transaction, the refund that gives it back.

use anyhow::Context;
use ticketing_common::bus::outbox;
use ticketing_events::{Envelope, PaymentCreated};
use uuid::Uuid;

use super::refund::{auto_refund, settle_in_background};
use crate::{
    app::Payments,
    domain::{Payment, PaymentState},
    provider::Card,
    store::{orders, payments, unmatched_charges},
};

/// Counts provider answers by outcome (`succeeded`, `processing`, `declined`,
/// `invalid_token`, `unavailable`).
pub const CHARGES: &str = "payments_charges_total";
/// Counts charges recorded for an order that was no longer live (cancelled while the buyer
/// was paying): the order stays cancelled and the charge is refunded automatically.
pub const PAID_ORDERS_NOT_LIVE: &str = "payments_paid_orders_not_live_total";
/// Counts charges no payment could hold (see `unmatched_charges`).
pub const UNMATCHED_CHARGES: &str = "payments_unmatched_charges_total";

/// How recording went.
#[derive(Debug)]
pub enum Recorded {
    /// Recorded now, with its event.
    Now(Payment),
    /// Recorded now, but the order had been cancelled: its refund is recorded too, and under
    /// way.
    Refunding(Payment),
    /// The payment already holds this very charge (a retry, a replayed webhook).
    Already(Payment),
    /// The payment already holds another charge: this one is a second charge for the order,
    /// kept in `unmatched_charges` for a refund.
    Duplicate(Payment),
}

impl Recorded {
    pub fn payment(&self) -> &Payment {
        match self {
            Recorded::Now(p)
            | Recorded::Refunding(p)
            | Recorded::Already(p)
            | Recorded::Duplicate(p) => p,
        }
    }
}

/// The deterministic event id of a payment's `payment.created`: one payment, one event, even
/// if something ever tried to write it twice (the outbox id is unique).
fn event_id(payment_id: Uuid) -> Uuid {
    Uuid::new_v5(&payment_id, b"payment.created")
}

/// Records `charge_id` on an order's payment. The money has moved, so the charge is recorded
/// whatever the payment's state was (pending, processing, even declined); only a payment that
/// already succeeded keeps its charge.
#[tracing::instrument(skip_all, fields(order_id = %order_id, payment_id = %payment_id, charge_id = %charge_id))]
pub async fn record_charge(
    app: &Payments,
    payment_id: Uuid,
    order_id: Uuid,
    charge_id: &str,
    amount: Option<i64>,
    card: Option<&Card>,
) -> anyhow::Result<Recorded> {
    let mut tx = app.pool.begin().await?;
    // The order first: the lock order every transaction follows.
    orders::lock(&mut tx, order_id)
        .await
        .context("cannot lock the order")?;
    if let Some(payment) = payments::mark_succeeded(&mut tx, payment_id, charge_id, card)
        .await
        .context("cannot record the charge")?
    {
        let completed = orders::complete_if_live(&mut tx, order_id)
            .await
            .context("cannot complete the order")?;
        let refund = if completed {
            None
        } else {
            auto_refund(&mut tx, &payment).await?
        };
        let event = PaymentCreated {
            id: payment.id,
            order_id,
            charge_id: charge_id.to_owned(),
        };
        outbox::enqueue(&mut tx, &Envelope::with_id(event_id(payment.id), event)).await?;
        tx.commit().await.context("cannot commit the charge")?;
        if completed {
            tracing::info!(
                amount_cents = payment.amount_cents,
                "payment succeeded; order complete"
            );
            return Ok(Recorded::Now(payment));
        }
        metrics::counter!(PAID_ORDERS_NOT_LIVE).increment(1);
        tracing::warn!(
            "charge recorded for an order that is no longer live (cancelled while being paid); it stays cancelled and the charge is refunded"
        );
        if let Some(refund_id) = refund {
            settle_in_background(app, refund_id);
        }
        return Ok(Recorded::Refunding(payment));
    }
    let payment = payments::find(&mut tx, payment_id)
        .await?
        .context("the payment disappeared")?;
    debug_assert_eq!(payment.state, PaymentState::Succeeded);
    if payment.charge_id.as_deref() == Some(charge_id) {
        tracing::debug!("charge already recorded");
        return Ok(Recorded::Already(payment));
    }
    let first_time = unmatched_charges::record(
        &mut tx,
        charge_id,
        Some(order_id),
        amount.or(Some(payment.amount_cents)),
        "second charge for an order already paid",
    )
    .await?;
    tx.commit()
        .await
        .context("cannot commit the unmatched charge")?;
    if first_time {
        metrics::counter!(UNMATCHED_CHARGES).increment(1);
        tracing::error!(
            recorded = payment.charge_id.as_deref().unwrap_or_default(),
            "a second charge for an order already paid: kept in unmatched_charges for a refund"
        );
    }
    Ok(Recorded::Duplicate(payment))
}
