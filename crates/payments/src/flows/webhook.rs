//! What verified Stripe events change. Every handler is idempotent: Stripe delivers at least
//! once and retries anything but a 2xx, so a replayed event must find its work done.

use anyhow::Context;
use uuid::Uuid;

use super::{
    record::{Recorded, UNMATCHED_CHARGES, record_charge},
    refund::record_refund,
};
use crate::{
    app::Payments,
    domain::{
        Payment, PaymentState,
        webhook::{Expected, IntentRef, Mismatch, StripeEvent, WebhookAction},
    },
    provider::PaymentProvider as _,
    store::{
        payments,
        refunds::{self, RefundState},
        unmatched_charges,
    },
};

/// Counts verified webhooks that disagree with the recorded attempt, by the field that
/// disagrees (`amount`, `currency`, `livemode`) and the event (`succeeded`, `failed`).
pub const WEBHOOK_MISMATCHES: &str = "payments_webhook_mismatches_total";

/// Whether an intent is the charge `payment`'s attempt asked for.
fn check(
    app: &Payments,
    intent: &IntentRef,
    payment: &Payment,
    succeeded: bool,
) -> Result<(), Mismatch> {
    intent.check(
        Expected {
            amount_cents: payment.amount_cents,
            currency: &payment.currency,
            livemode: app.provider.livemode(),
        },
        succeeded,
    )
}

/// Keeps money no payment can hold in `unmatched_charges` for a person to look at, counted
/// once however often the webhook comes.
async fn keep_unmatched(
    app: &Payments,
    intent: &IntentRef,
    order_id: Uuid,
    amount: Option<i64>,
    reason: &str,
) -> anyhow::Result<()> {
    let mut conn = app.pool.acquire().await?;
    if unmatched_charges::record(&mut conn, &intent.intent_id, Some(order_id), amount, reason)
        .await
        .context("cannot record the unmatched charge")?
    {
        metrics::counter!(UNMATCHED_CHARGES).increment(1);
        tracing::error!(%order_id, intent = %intent.intent_id, reason, "money no payment holds: kept in unmatched_charges");
    }
    Ok(())
}

/// Applies a verified event. `Err` only for our own failures (Stripe then retries).
#[tracing::instrument(skip_all, fields(event_id = %event.id, kind = %event.kind))]
pub async fn handle_stripe_event(app: &Payments, event: &StripeEvent) -> anyhow::Result<()> {
    match &event.action {
        WebhookAction::IntentSucceeded(intent) => intent_succeeded(app, intent).await,
        WebhookAction::IntentFailed { intent, message } => {
            intent_failed(app, intent, message).await
        }
        WebhookAction::RefundSucceeded {
            intent_id,
            refund_id,
        } => refund_succeeded(app, intent_id, refund_id.as_deref()).await,
        WebhookAction::RefundFailed { intent_id, reason } => {
            refund_failed(app, intent_id, reason).await
        }
        WebhookAction::Ignore => {
            tracing::debug!("webhook event acknowledged and ignored");
            Ok(())
        }
    }
}

/// `payment_intent.succeeded`: the money has moved. Records the charge on the order's
/// payment (whatever state it was in: the answer of a confirmation may have been lost, or
/// the intent was still processing) and completes the order, once.
async fn intent_succeeded(app: &Payments, intent: &IntentRef) -> anyhow::Result<()> {
    let Some(order_id) = intent.order_id else {
        tracing::info!(intent = %intent.intent_id, "succeeded intent without our order id: not ours");
        return Ok(());
    };
    let payment = {
        let mut conn = app.pool.acquire().await?;
        payments::find_by_order(&mut conn, order_id).await?
    };
    let Some(payment) = payment else {
        // Every charge we make has its attempt recorded first; money for an order without
        // one is kept for an operator rather than dropped.
        return keep_unmatched(
            app,
            intent,
            order_id,
            intent.amount,
            "succeeded intent for an order without a payment",
        )
        .await;
    };
    if let Err(mismatch) = check(app, intent, &payment, true) {
        // Signed with our secret, yet not the charge we asked for: complete nothing, keep it
        // for a person to look at.
        metrics::counter!(WEBHOOK_MISMATCHES, "field" => mismatch.field(), "event" => "succeeded")
            .increment(1);
        let reason = format!("succeeded intent does not match the attempt: {mismatch}");
        return keep_unmatched(
            app,
            intent,
            order_id,
            intent.amount_received.or(intent.amount),
            &reason,
        )
        .await;
    }
    match record_charge(
        app,
        payment.id,
        order_id,
        &intent.intent_id,
        intent.amount,
        None,
    )
    .await?
    {
        Recorded::Now(_) => tracing::info!("payment completed by webhook"),
        Recorded::Refunding(_) => {
            tracing::warn!("a webhook's charge landed on a cancelled order: refunded")
        }
        Recorded::Already(_) => tracing::debug!("charge already recorded: a replay"),
        Recorded::Duplicate(_) => {} // logged and counted where it was recorded
    }
    Ok(())
}

/// `payment_intent.payment_failed`: a processing payment will not complete; it becomes
/// declined so the buyer can try again. Anything else (a decline the paying request already
/// recorded, an intent that is not ours) changes nothing.
async fn intent_failed(app: &Payments, intent: &IntentRef, message: &str) -> anyhow::Result<()> {
    let Some(order_id) = intent.order_id else {
        return Ok(());
    };
    let mut conn = app.pool.acquire().await?;
    let Some(payment) = payments::find_by_order(&mut conn, order_id).await? else {
        return Ok(());
    };
    if let Err(mismatch) = check(app, intent, &payment, false) {
        metrics::counter!(WEBHOOK_MISMATCHES, "field" => mismatch.field(), "event" => "failed")
            .increment(1);
        tracing::warn!(%order_id, intent = %intent.intent_id, %mismatch, "failed intent does not match the recorded attempt: ignored");
        return Ok(());
    }
    if payment.state == PaymentState::Processing
        && payments::fail_processing(&mut conn, payment.id, &intent.intent_id, message).await?
    {
        tracing::info!(%order_id, "processing payment failed; the buyer may try again");
    }
    Ok(())
}

/// `charge.refunded` (or a refund that `succeeded`): a refund we asked for went through. If
/// its request never got the answer (the refund is still pending here), this records it.
/// A refund we know nothing of (made in Stripe's dashboard) is only logged.
async fn refund_succeeded(
    app: &Payments,
    intent_id: &str,
    refund_id: Option<&str>,
) -> anyhow::Result<()> {
    let refund = refunds::find_by_charge(&mut *app.pool.acquire().await?, intent_id).await?;
    match (refund, refund_id) {
        (Some(refund), Some(provider_refund_id)) if refund.state == RefundState::Pending => {
            if record_refund(app, &refund, provider_refund_id).await? {
                tracing::info!(refund_id = %refund.id, "refund recorded from a webhook");
            }
        }
        (Some(_), _) => tracing::debug!("refund already recorded"),
        (None, _) => tracing::warn!(
            intent = intent_id,
            "a refund we did not ask for (made at the provider directly?): nothing recorded"
        ),
    }
    Ok(())
}

/// `refund.updated` / `refund.failed` to failed: a refund the provider had accepted did not
/// go through. It becomes `failed`, for a person (the operators' attention list).
async fn refund_failed(app: &Payments, intent_id: &str, reason: &str) -> anyhow::Result<()> {
    let mut conn = app.pool.acquire().await?;
    let Some(refund) = refunds::find_by_charge(&mut conn, intent_id).await? else {
        return Ok(());
    };
    if refunds::mark_failed(&mut conn, refund.id, None, reason).await? {
        tracing::error!(refund_id = %refund.id, reason, "the provider reports the refund failed; a person must look");
    }
    Ok(())
}
