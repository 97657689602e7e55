//! Paying for an order.
//!
//! 1. **Claim** (one short transaction, the order row locked): the checks in the contract's
//!    order (existence, ownership, state), then the attempt: the order's first attempt is
//!    inserted `pending` with a lease held by this request; an existing payment is answered
//!    from (succeeded, processing), waited for (pending and leased by another request), taken
//!    over (pending, lease run out: its holder died or got no answer), or succeeded by a new
//!    attempt (declined or failed).
//! 2. **Charge**, outside any transaction, with the attempt's idempotency key and parameters.
//! 3. **Record** the outcome: a charge in one transaction with the order's completion and
//!    `payment.created`; a refusal on the attempt; no answer by letting go of the lease
//!    (the attempt stays pending: only a retry with the same key can tell whether money
//!    moved).
//!
//! A request that finds another one charging waits for that outcome and answers it: 20
//! simultaneous requests make one provider call and all answer the same. A request that
//! comes after the order was paid gets 409.
//!
//! Before all that: a buyer with too many recent declines is refused (card testing), and a
//! payment for an order the replica has not learnt yet waits for it (up to
//! `Payments::order_wait`), woken by the replica's notification on whichever process
//! learns it.

use std::time::Duration;

use anyhow::Context;
use ticketing_events::OrderStatus;
use tokio::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

use super::record::{CHARGES, Recorded, record_charge};
use crate::{
    app::{DECLINE_WINDOW, Payments},
    domain::{Payment, PaymentState},
    provider::{Charge, ChargeError, ChargeRequest, ChargeStatus, Found, PaymentProvider},
    store::{
        declines,
        lease::{self, Leased},
        orders,
        payments::{self, NewAttempt},
    },
};

/// How often a waiting request looks at the attempt it waits for: often at first (most
/// charges take well under a second), then less, to spare the database while a slow charge
/// keeps many requests waiting.
const FIRST_POLL: Duration = Duration::from_millis(20);
const MAX_POLL: Duration = Duration::from_millis(200);

/// How a payment request ended, short of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayOutcome {
    /// Charged: the payment's id.
    Paid(Uuid),
    /// Accepted by the provider, settled later by a webhook: the payment's id.
    Processing(Uuid),
}

#[derive(Debug, thiserror::Error)]
pub enum PayError {
    #[error("Order not found")]
    NotFound,
    #[error("Not the order's owner")]
    NotOwner,
    #[error("The order is cancelled")]
    Cancelled,
    #[error("The order is already paid")]
    AlreadyPaid,
    #[error("The order was refunded")]
    Refunded,
    /// Its `expiresAt` has passed (the cancellation may not have arrived yet).
    #[error("The order has expired")]
    Expired,
    /// The charge went through, but the order had been cancelled meanwhile: it is refunded.
    #[error("The order was cancelled while it was being paid; the charge is being refunded")]
    CancelledWhilePaying,
    /// Too many declined attempts lately (card testing).
    #[error("Too many declined payments; try again later")]
    TooManyDeclines { retry_after_secs: u64 },
    /// The provider refused our request itself; nothing was charged and the attempt ended.
    #[error("the payment provider refused the request: {0}")]
    ProviderRefused(String),
    /// The provider's message.
    #[error("{0}")]
    Declined(String),
    /// The provider's message.
    #[error("{0}")]
    InvalidToken(String),
    /// The provider did not answer; nothing was marked, a retry is safe.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
    /// Another request holds the attempt and did not finish within the lease.
    #[error("a payment for this order is in progress")]
    InProgress,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for PayError {
    fn from(error: sqlx::Error) -> Self {
        PayError::Unexpected(anyhow::Error::new(error).context("database query failed"))
    }
}

/// What the claim gave this request.
enum Claim {
    /// This request holds the pending attempt and calls the provider; `resumed` when the
    /// attempt's last call got no answer (the provider is asked about it first).
    Hold { payment: Payment, resumed: bool },
    /// Another request holds it; wait for its outcome.
    Wait(Payment),
    /// The payment has an outcome already.
    Settled(Payment),
}

/// Pays for `order_id` on behalf of `buyer` with `token`.
#[tracing::instrument(skip_all, fields(order_id = %order_id, payment_id = tracing::field::Empty))]
pub async fn pay_for_order(
    app: &Payments,
    buyer: Uuid,
    order_id: Uuid,
    token: &str,
) -> Result<PayOutcome, PayError> {
    let deadline = Instant::now() + app.attempt_lease + Duration::from_secs(1);
    let mut waited_for_order = false;
    loop {
        let claimed = match claim(app, buyer, order_id, token).await {
            Err(PayError::NotFound) if !waited_for_order => {
                waited_for_order = true;
                wait_for_order(app, order_id).await?;
                continue;
            }
            claimed => claimed?,
        };
        match claimed {
            Claim::Settled(payment) => return answer(&payment),
            Claim::Hold { payment, resumed } => {
                tracing::Span::current().record("payment_id", tracing::field::display(payment.id));
                // Spawned, so that a buyer who hangs up does not abandon a charge between the
                // provider's answer and its record.
                let app = app.clone();
                let span = tracing::Span::current();
                return tokio::spawn(
                    async move { charge_and_record(&app, payment, resumed).await }.instrument(span),
                )
                .await
                .context("the charge task failed")?;
            }
            Claim::Wait(payment) => {
                tracing::debug!(
                    attempt = payment.attempt,
                    "another request is charging; waiting for its outcome"
                );
                match wait_for_holder(app, payment.id, deadline).await? {
                    Waited::Answer(answer) => return answer,
                    // Claim again, which takes the attempt over.
                    Waited::HolderGone if Instant::now() <= deadline => {}
                    Waited::HolderGone => return Err(PayError::InProgress),
                }
            }
        }
    }
}

/// Waits, up to `order_wait`, for the replica to learn an order that orders created a moment
/// ago (its `order.created` is on its way). Returns when it is known or the time is up; the
/// caller claims again either way.
async fn wait_for_order(app: &Payments, order_id: Uuid) -> Result<(), PayError> {
    // Subscribe before looking again: an arrival between the look and the wait is not lost.
    let arrivals = app.arrivals.subscribe().await;
    if orders::exists(&mut *app.pool.acquire().await?, order_id).await? {
        return Ok(());
    }
    match arrivals {
        Ok(mut arrivals) => {
            let arrived = arrivals.wait_for(order_id, app.order_wait).await;
            tracing::debug!(arrived, "waited for an order the replica did not know");
        }
        Err(error) => {
            // Without notifications, one look at the deadline is all that is left.
            tracing::warn!(
                error = format!("{error:#}"),
                "cannot listen for learnt orders"
            );
            tokio::time::sleep(app.order_wait).await;
        }
    }
    Ok(())
}

/// Step 1: the checks, then the attempt, in one transaction with the order locked.
async fn claim(
    app: &Payments,
    buyer: Uuid,
    order_id: Uuid,
    token: &str,
) -> Result<Claim, PayError> {
    let mut tx = app.pool.begin().await?;
    if let Some(retry_after_secs) =
        declines::blocked_for(&mut tx, buyer, app.declines_allowed, DECLINE_WINDOW).await?
    {
        return Err(PayError::TooManyDeclines { retry_after_secs });
    }
    let order = orders::lock(&mut tx, order_id)
        .await?
        .ok_or(PayError::NotFound)?;
    if order.user_id != buyer {
        return Err(PayError::NotOwner);
    }
    match order.status {
        OrderStatus::Cancelled => return Err(PayError::Cancelled),
        OrderStatus::Complete => return Err(PayError::AlreadyPaid),
        OrderStatus::Refunded => return Err(PayError::Refunded),
        OrderStatus::Created | OrderStatus::AwaitingPayment => {}
    }
    let attempt = NewAttempt {
        user_id: buyer,
        provider: app.provider.name(),
        amount_cents: order.price_cents,
        currency: app.currency.as_str(),
        token,
        lease_token: Uuid::new_v4(),
        lease: app.attempt_lease,
    };
    // An attempt already under way (its answer lost) is settled even after the deadline: it
    // may have charged. Only a new charge is refused.
    if order.expired && payments::find_by_order(&mut tx, order_id).await?.is_none() {
        return Err(PayError::Expired);
    }
    let claim = match payments::insert_first_attempt(&mut tx, Uuid::now_v7(), order_id, &attempt)
        .await?
    {
        Some(payment) => Claim::Hold {
            payment,
            resumed: false,
        },
        None => {
            let payment = payments::lock_for_order(&mut tx, order_id)
                .await?
                .context("the order's payment disappeared")?;
            match payment.state {
                PaymentState::Pending if payment.leased => Claim::Wait(payment),
                PaymentState::Pending => {
                    // Same attempt, same key, same parameters: if the last call charged, this
                    // one finds that charge instead of making another. The token of this
                    // request is not used until the attempt has an outcome.
                    tracing::warn!(
                        attempt = payment.attempt,
                        last_error = payment
                            .last_error
                            .as_deref()
                            .unwrap_or("none (its holder went away)"),
                        "retrying a payment attempt that got no answer, with the same idempotency key"
                    );
                    Claim::Hold {
                        payment: payments::take_over(
                            &mut tx,
                            payment.id,
                            attempt.lease_token,
                            attempt.lease,
                        )
                        .await?,
                        resumed: true,
                    }
                }
                // A new attempt only while the order may still be paid: a refusal of the
                // last one does not let a charge through after the deadline.
                PaymentState::Declined | PaymentState::Failed if order.expired => {
                    return Err(PayError::Expired);
                }
                PaymentState::Declined | PaymentState::Failed => {
                    tracing::info!(
                        previous = payment.attempt,
                        "the last attempt was refused; starting a new one"
                    );
                    Claim::Hold {
                        payment: payments::start_next_attempt(&mut tx, payment.id, &attempt)
                            .await?,
                        resumed: false,
                    }
                }
                PaymentState::Processing | PaymentState::Succeeded | PaymentState::Refunded => {
                    Claim::Settled(payment)
                }
            }
        }
    };
    tx.commit()
        .await
        .context("cannot commit the payment attempt")?;
    Ok(claim)
}

/// The request of a payment's current attempt: the same key and parameters every time.
pub(super) fn charge_request(payment: &Payment) -> ChargeRequest {
    ChargeRequest {
        idempotency_key: payment.idempotency_key(),
        order_id: payment.order_id,
        amount_cents: payment.amount_cents,
        currency: payment.currency.clone(),
        token: payment.token.clone(),
    }
}

/// Steps 2 and 3 for the attempt this request (or the reconciler) holds. A resumed attempt
/// (its last call got no answer) is first looked up at the provider; only if the provider
/// has not seen it is it sent again, under the same key.
pub(super) async fn charge_and_record(
    app: &Payments,
    payment: Payment,
    resumed: bool,
) -> Result<PayOutcome, PayError> {
    let request = charge_request(&payment);
    let found = if resumed {
        match app.provider.find(&request).await {
            Ok(Found::Outcome(outcome)) => {
                tracing::info!("the provider knows the attempt whose answer was lost");
                Some(outcome)
            }
            Ok(Found::Nothing) => None,
            Err(reason) => {
                tracing::warn!(%reason, "cannot ask the provider about the attempt; sending it again under the same key");
                None
            }
        }
    } else {
        None
    };
    let result = match found {
        Some(outcome) => outcome,
        None => app.provider.charge(&request).await,
    };
    let outcome = match &result {
        Ok(Charge {
            status: ChargeStatus::Succeeded,
            ..
        }) => "succeeded",
        Ok(Charge {
            status: ChargeStatus::Processing,
            ..
        }) => "processing",
        Err(ChargeError::Declined(_)) => "declined",
        Err(ChargeError::InvalidToken(_)) => "invalid_token",
        Err(ChargeError::Refused(_)) => "refused",
        Err(ChargeError::Unavailable(_)) => "unavailable",
    };
    metrics::counter!(CHARGES, "provider" => app.provider.name(), "outcome" => outcome)
        .increment(1);
    // Each arm takes its own connection when it needs one: a request never holds two at once
    // (recording a charge opens a transaction of its own).
    match result {
        Ok(Charge {
            id,
            status: ChargeStatus::Succeeded,
            card,
        }) => {
            let recorded =
                record_charge(app, payment.id, payment.order_id, &id, None, card.as_ref()).await?;
            match recorded {
                // A duplicate still answers with the order's payment: the order is paid, and
                // the second charge is kept for a refund.
                Recorded::Duplicate(_) => {
                    tracing::error!(charge_id = %id, "this request's charge was a second one");
                }
                Recorded::Refunding(_) => return Err(PayError::CancelledWhilePaying),
                Recorded::Now(_) | Recorded::Already(_) => {}
            }
            Ok(PayOutcome::Paid(recorded.payment().id))
        }
        Ok(Charge {
            id,
            status: ChargeStatus::Processing,
            ..
        }) => {
            let mut conn = app.pool.acquire().await?;
            if payments::mark_processing(&mut conn, payment.id, payment.attempt, &id).await? {
                tracing::info!(charge_id = %id, "payment processing; a webhook will settle it");
                return Ok(PayOutcome::Processing(payment.id));
            }
            current(&mut conn, payment.id).await
        }
        Err(ChargeError::Declined(message)) => {
            refuse(app, &payment, PaymentState::Declined, message).await
        }
        Err(ChargeError::InvalidToken(message)) => {
            refuse(app, &payment, PaymentState::Failed, message).await
        }
        Err(ChargeError::Refused(message)) => {
            // Nothing happened at the provider: the attempt ends, the next one gets a new key.
            match refuse(app, &payment, PaymentState::Failed, message.clone()).await {
                Err(PayError::InvalidToken(_)) => Err(PayError::ProviderRefused(message)),
                other => other,
            }
        }
        Err(ChargeError::Unavailable(reason)) => {
            let lease_token = payment
                .lease_token
                .context("a held attempt without a lease token")?;
            let mut conn = app.pool.acquire().await?;
            if lease::release(
                &mut conn,
                Leased::Payments,
                payment.id,
                lease_token,
                &reason,
            )
            .await?
            {
                tracing::warn!(%reason, "payment provider unavailable; the attempt stays pending until the provider can tell what became of it");
                return Err(PayError::Unavailable(reason));
            }
            current(&mut conn, payment.id).await
        }
    }
}

/// Records a refusal (declined card, invalid token) on the attempt and answers it.
async fn refuse(
    app: &Payments,
    payment: &Payment,
    state: PaymentState,
    message: String,
) -> Result<PayOutcome, PayError> {
    let mut conn = app.pool.acquire().await?;
    if payments::mark_refused(&mut conn, payment.id, payment.attempt, state, &message).await? {
        tracing::info!(state = state.as_str(), %message, "payment refused by the provider");
        if state == PaymentState::Declined
            && let Some(buyer) = payment.user_id
        {
            declines::record(&mut conn, buyer, payment.order_id).await?;
        }
        return answer(&Payment {
            state,
            failure_message: Some(message),
            ..payment.clone()
        });
    }
    current(&mut conn, payment.id).await
}

/// How waiting for another request's attempt ended.
enum Waited {
    /// What that request answered (or would have): everyone asking sees the same.
    Answer(Result<PayOutcome, PayError>),
    /// Its lease ran out without an outcome: the request died; the attempt may be taken over.
    HolderGone,
}

/// Waits until the holder of a payment's attempt is done, or `deadline`.
async fn wait_for_holder(
    app: &Payments,
    payment_id: Uuid,
    deadline: Instant,
) -> Result<Waited, PayError> {
    let mut poll = FIRST_POLL;
    loop {
        let payment = {
            let mut conn = app.pool.acquire().await?;
            payments::find(&mut conn, payment_id)
                .await?
                .context("the payment disappeared")?
        };
        match payment.state {
            PaymentState::Pending if payment.leased => {
                if Instant::now() > deadline {
                    return Ok(Waited::Answer(Err(PayError::InProgress)));
                }
                tokio::time::sleep(poll).await;
                poll = (poll * 2).min(MAX_POLL);
            }
            PaymentState::Pending if payment.last_error.is_none() => return Ok(Waited::HolderGone),
            // Settled, or the holder let go because the provider did not answer (503 for all).
            _ => return Ok(Waited::Answer(answer(&payment))),
        }
    }
}

/// Reads the payment again and answers from it (someone else recorded the outcome first).
async fn current(conn: &mut sqlx::PgConnection, payment_id: Uuid) -> Result<PayOutcome, PayError> {
    let payment = payments::find(conn, payment_id)
        .await?
        .context("the payment disappeared")?;
    answer(&payment)
}

/// The answer a payment gives to everyone who asks about it.
fn answer(payment: &Payment) -> Result<PayOutcome, PayError> {
    let message = || payment.failure_message.clone().unwrap_or_default();
    match payment.state {
        PaymentState::Succeeded => Ok(PayOutcome::Paid(payment.id)),
        PaymentState::Refunded => Err(PayError::Refunded),
        PaymentState::Processing => Ok(PayOutcome::Processing(payment.id)),
        PaymentState::Declined => Err(PayError::Declined(message())),
        PaymentState::Failed => Err(PayError::InvalidToken(message())),
        PaymentState::Pending => match &payment.last_error {
            Some(reason) if !payment.leased => Err(PayError::Unavailable(reason.clone())),
            _ => Err(PayError::InProgress),
        },
    }
}
