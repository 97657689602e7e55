//! Giving money back: whole charges, once each.
//!
//! Like a payment, a refund is recorded before the provider is asked (pending, its lease held
//! by the caller), asked under a deterministic idempotency key, and settled in one
//! transaction with its `payment.refunded` event:
//!
//! - an operator refunds a complete order ([`refund_order`]): the order becomes `refunded`
//!   (orders then publishes `order.refunded` and tickets puts the ticket back on sale);
//! - a charge that lands on an order already cancelled is refunded automatically
//!   ([`auto_refund`], recorded in the charge's own transaction): the order stays cancelled;
//! - a refund whose answer was lost is asked again, same key, by the next caller or by the
//!   reconciler ([`settle`]).
//!
//! Only what the provider itself refuses is left for a person (`state = 'failed'`, listed in
//! the operators' attention list).

use anyhow::Context;
use ticketing_common::{admin::ActionLog, bus::outbox};
use ticketing_events::{Envelope, OrderStatus, PaymentRefunded};
use tracing::Instrument;
use uuid::Uuid;

use crate::{
    app::Payments,
    domain::{Payment, PaymentState},
    provider::{PaymentProvider, RefundError as ProviderRefundError, RefundRequest},
    store::{
        lease::{self, Leased},
        orders, payments,
        refunds::{self, NewRefund, Reason, RefundRow, RefundState},
    },
};

/// Counts refunds by reason (`operator`, `cancelled_order`) and outcome (`succeeded`,
/// `refused`, `unavailable`).
pub const REFUNDS: &str = "payments_refunds_total";

/// A refund made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refunded {
    /// The refund's id (carried by `payment.refunded`).
    pub id: Uuid,
    pub order_id: Uuid,
    pub amount_cents: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    #[error("Order not found")]
    NotFound,
    /// Why it is not refundable, in words: "not paid yet", "cancelled".
    #[error("Only a paid order can be refunded; this one is {0}")]
    NotComplete(&'static str),
    #[error("The order is already refunded")]
    AlreadyRefunded,
    #[error("A refund for this order is in progress")]
    InProgress,
    /// The provider's message.
    #[error("The payment provider refused the refund: {0}")]
    Refused(String),
    /// The reason is logged, not shown.
    #[error(
        "The payment provider is not answering; nothing was refunded yet. Please try again shortly"
    )]
    Unavailable(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for RefundError {
    fn from(error: sqlx::Error) -> Self {
        RefundError::Unexpected(anyhow::Error::new(error).context("database query failed"))
    }
}

/// An operator (id, e-mail) refunds a complete order; the request is recorded in the
/// operator actions. Of any number of simultaneous requests one asks the
/// provider; the others are told a refund is in progress, then that it is done.
#[tracing::instrument(skip_all, fields(order_id = %order_id, operator = %operator.0))]
pub async fn refund_order(
    app: &Payments,
    operator: (Uuid, &str),
    order_id: Uuid,
) -> Result<Refunded, RefundError> {
    // Recorded when asked, whatever the outcome: an operator's attempt is an action too.
    ActionLog::Postgres(app.pool.clone())
        .record(operator, "refund", &order_id.to_string())
        .await?;
    let refund = claim(app, operator.0, order_id).await?;
    tracing::info!(refund_id = %refund.id, attempt = refund.attempt, "refunding at an operator's request");
    // Spawned: an operator who hangs up does not abandon a refund between the provider's
    // answer and its record.
    let app = app.clone();
    tokio::spawn(async move { settle_held(&app, refund).await }.in_current_span())
        .await
        .context("the refund task failed")?
}

/// The checks, then the refund record, in one transaction with the order locked.
async fn claim(app: &Payments, operator: Uuid, order_id: Uuid) -> Result<RefundRow, RefundError> {
    let mut tx = app.pool.begin().await?;
    let order = orders::lock(&mut tx, order_id)
        .await?
        .ok_or(RefundError::NotFound)?;
    match order.status {
        OrderStatus::Complete => {}
        OrderStatus::Refunded => return Err(RefundError::AlreadyRefunded),
        OrderStatus::Cancelled => return Err(RefundError::NotComplete("cancelled")),
        OrderStatus::Created | OrderStatus::AwaitingPayment => {
            return Err(RefundError::NotComplete("not paid yet"));
        }
    }
    let payment = payments::lock_for_order(&mut tx, order_id)
        .await?
        .filter(|payment| payment.state == PaymentState::Succeeded)
        .ok_or(RefundError::NotComplete("still being paid"))?;
    let lease = (Uuid::new_v4(), app.attempt_lease);
    let new = NewRefund {
        id: Uuid::now_v7(),
        payment_id: payment.id,
        order_id,
        amount_cents: payment.amount_cents,
        reason: Reason::Operator,
        requested_by: Some(operator),
        lease: Some(lease),
    };
    let refund = match refunds::insert(&mut tx, &new).await? {
        Some(refund) => refund,
        None => {
            let existing = refunds::lock_for_payment(&mut tx, payment.id)
                .await?
                .context("the payment's refund disappeared")?;
            match existing.state {
                RefundState::Succeeded => return Err(RefundError::AlreadyRefunded),
                RefundState::Pending if existing.leased => return Err(RefundError::InProgress),
                // Pending without a holder: asked again under the same key. Failed: the
                // operator tries again, as a new attempt under a new key.
                state => {
                    let again = (state == RefundState::Failed).then_some(operator);
                    refunds::take(&mut tx, existing.id, lease.0, lease.1, again)
                        .await?
                        .ok_or(RefundError::InProgress)?
                }
            }
        }
    };
    tx.commit()
        .await
        .context("cannot commit the refund record")?;
    Ok(refund)
}

/// Records, in the transaction that records a charge on an order no longer live, the refund
/// that gives it back. `Some(id)` when recorded now (the caller settles it after committing).
pub async fn auto_refund(
    conn: &mut sqlx::PgConnection,
    payment: &Payment,
) -> anyhow::Result<Option<Uuid>> {
    let new = NewRefund {
        id: Uuid::now_v7(),
        payment_id: payment.id,
        order_id: payment.order_id,
        amount_cents: payment.amount_cents,
        reason: Reason::CancelledOrder,
        requested_by: None,
        lease: None,
    };
    Ok(refunds::insert(conn, &new)
        .await
        .context("cannot record the refund")?
        .map(|refund| refund.id))
}

/// Settles a pending refund nobody holds, in the background (after the transaction that
/// recorded it committed). A failure leaves it for the reconciler.
pub fn settle_in_background(app: &Payments, refund_id: Uuid) {
    let app = app.clone();
    tokio::spawn(
        async move {
            if let Err(error) = settle(&app, refund_id).await {
                tracing::warn!(%refund_id, %error, "refund not settled yet; the reconciler tries again");
            }
        }
        .in_current_span(),
    );
}

/// Takes a pending refund nobody holds and asks the provider. `Ok(None)` if someone else
/// holds it or it is settled.
pub async fn settle(app: &Payments, refund_id: Uuid) -> Result<Option<Refunded>, RefundError> {
    let taken = {
        let mut conn = app.pool.acquire().await?;
        refunds::take(
            &mut conn,
            refund_id,
            Uuid::new_v4(),
            app.attempt_lease,
            None,
        )
        .await?
    };
    match taken {
        Some(refund) => settle_held(app, refund).await.map(Some),
        None => Ok(None),
    }
}

/// Asks the provider for the refund this caller holds, and records the answer.
async fn settle_held(app: &Payments, refund: RefundRow) -> Result<Refunded, RefundError> {
    let payment = {
        let mut conn = app.pool.acquire().await?;
        payments::find(&mut conn, refund.payment_id)
            .await?
            .context("the refund's payment disappeared")?
    };
    let charge_id = payment
        .charge_id
        .clone()
        .context("a refund for a payment without a charge")?;
    let request = RefundRequest {
        idempotency_key: refund.idempotency_key(),
        charge_id,
        order_id: refund.order_id,
        amount_cents: refund.amount_cents,
    };
    let reason = refund.reason.as_str();
    match app.provider.refund(&request).await {
        Ok(made) => {
            metrics::counter!(REFUNDS, "reason" => reason, "outcome" => "succeeded").increment(1);
            record_refund(app, &refund, &made.id).await?;
            tracing::info!(refund_id = %refund.id, provider_refund = %made.id, "refunded");
            Ok(Refunded {
                id: refund.id,
                order_id: refund.order_id,
                amount_cents: refund.amount_cents,
            })
        }
        Err(ProviderRefundError::Refused(message)) => {
            metrics::counter!(REFUNDS, "reason" => reason, "outcome" => "refused").increment(1);
            let mut conn = app.pool.acquire().await?;
            refunds::mark_failed(&mut conn, refund.id, Some(refund.attempt), &message).await?;
            tracing::error!(refund_id = %refund.id, %message, "the provider refused the refund; a person must look (operators' attention list)");
            Err(RefundError::Refused(message))
        }
        Err(ProviderRefundError::Unavailable(why)) => {
            metrics::counter!(REFUNDS, "reason" => reason, "outcome" => "unavailable").increment(1);
            let lease_token = refund
                .lease_token
                .context("a held refund without a lease token")?;
            let mut conn = app.pool.acquire().await?;
            lease::release(&mut conn, Leased::Refunds, refund.id, lease_token, &why).await?;
            tracing::warn!(refund_id = %refund.id, reason = %why, "the provider did not answer the refund; it is asked again later under the same key");
            Err(RefundError::Unavailable(why))
        }
    }
}

/// The deterministic event id of a refund's `payment.refunded`.
fn event_id(refund_id: Uuid) -> Uuid {
    Uuid::new_v5(&refund_id, b"payment.refunded")
}

/// Records a refund the provider made: the refund succeeded, the payment refunded, an
/// operator's order `refunded`, and `payment.refunded`, in one transaction. Recording it
/// twice (a webhook after the request) changes nothing.
pub(super) async fn record_refund(
    app: &Payments,
    refund: &RefundRow,
    provider_refund_id: &str,
) -> anyhow::Result<bool> {
    let mut tx = app.pool.begin().await?;
    orders::lock(&mut tx, refund.order_id)
        .await
        .context("cannot lock the order")?;
    if !refunds::mark_succeeded(&mut tx, refund.id, refund.attempt, provider_refund_id).await? {
        return Ok(false);
    }
    payments::mark_refunded(&mut tx, refund.payment_id).await?;
    if refund.reason == Reason::Operator {
        orders::refund_if_complete(&mut tx, refund.order_id).await?;
    }
    let event = PaymentRefunded {
        id: refund.id,
        order_id: refund.order_id,
        refund_id: provider_refund_id.to_owned(),
    };
    outbox::enqueue(&mut tx, &Envelope::with_id(event_id(refund.id), event)).await?;
    tx.commit().await.context("cannot commit the refund")?;
    Ok(true)
}
