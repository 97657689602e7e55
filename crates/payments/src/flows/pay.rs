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

use std::time::Duration;

use anyhow::Context;
use ticketing_events::OrderStatus;
use tokio::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

use super::record::{CHARGES, Recorded, record_charge};
use crate::{
    app::Payments,
    domain::{Payment, PaymentState},
    provider::{Charge, ChargeError, ChargeRequest, ChargeStatus, PaymentProvider},
    store::{
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
    /// This request holds the pending attempt and calls the provider.
    Hold(Payment),
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
    loop {
        match claim(app, buyer, order_id, token).await? {
            Claim::Settled(payment) => return answer(&payment),
            Claim::Hold(payment) => {
                tracing::Span::current().record("payment_id", tracing::field::display(payment.id));
                // Spawned, so that a buyer who hangs up does not abandon a charge between the
                // provider's answer and its record.
                let app = app.clone();
                let span = tracing::Span::current();
                return tokio::spawn(
                    async move { charge_and_record(&app, payment).await }.instrument(span),
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

/// Step 1: the checks, then the attempt, in one transaction with the order locked.
async fn claim(
    app: &Payments,
    buyer: Uuid,
    order_id: Uuid,
    token: &str,
) -> Result<Claim, PayError> {
    let mut tx = app.pool.begin().await?;
    let order = orders::lock(&mut tx, order_id)
        .await?
        .ok_or(PayError::NotFound)?;
    if order.user_id != buyer {
        return Err(PayError::NotOwner);
    }
    match order.status {
        OrderStatus::Cancelled => return Err(PayError::Cancelled),
        OrderStatus::Complete => return Err(PayError::AlreadyPaid),
        OrderStatus::Created | OrderStatus::AwaitingPayment => {}
    }
    let attempt = NewAttempt {
        provider: app.provider.name(),
        amount_cents: order.price_cents,
        currency: app.currency.as_str(),
        token,
        lease_token: Uuid::new_v4(),
        lease: app.attempt_lease,
    };
    let claim = match payments::insert_first_attempt(&mut tx, Uuid::now_v7(), order_id, &attempt)
        .await?
    {
        Some(payment) => Claim::Hold(payment),
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
                    Claim::Hold(
                        payments::take_over(
                            &mut tx,
                            payment.id,
                            attempt.lease_token,
                            attempt.lease,
                        )
                        .await?,
                    )
                }
                PaymentState::Declined | PaymentState::Failed => {
                    tracing::info!(
                        previous = payment.attempt,
                        "the last attempt was refused; starting a new one"
                    );
                    Claim::Hold(payments::start_next_attempt(&mut tx, payment.id, &attempt).await?)
                }
                PaymentState::Processing | PaymentState::Succeeded => Claim::Settled(payment),
            }
        }
    };
    tx.commit()
        .await
        .context("cannot commit the payment attempt")?;
    Ok(claim)
}

/// Steps 2 and 3 for the attempt this request holds.
async fn charge_and_record(app: &Payments, payment: Payment) -> Result<PayOutcome, PayError> {
    let request = ChargeRequest {
        idempotency_key: payment.idempotency_key(),
        order_id: payment.order_id,
        amount_cents: payment.amount_cents,
        currency: payment.currency.clone(),
        token: payment.token.clone(),
    };
    let result = app.provider.charge(&request).await;
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
        }) => {
            let recorded = record_charge(app, payment.id, payment.order_id, &id, None).await?;
            // A duplicate still answers with the order's payment: the order is paid, and the
            // second charge is kept for a refund.
            if let Recorded::Duplicate(_) = &recorded {
                tracing::error!(charge_id = %id, "this request's charge was a second one");
            }
            Ok(PayOutcome::Paid(recorded.payment().id))
        }
        Ok(Charge {
            id,
            status: ChargeStatus::Processing,
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
        Err(ChargeError::Unavailable(reason)) => {
            let lease_token = payment
                .lease_token
                .context("a held attempt without a lease token")?;
            let mut conn = app.pool.acquire().await?;
            if payments::release(&mut conn, payment.id, lease_token, &reason).await? {
                tracing::warn!(%reason, "payment provider unavailable; the attempt stays pending for a retry with the same key");
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
        PaymentState::Processing => Ok(PayOutcome::Processing(payment.id)),
        PaymentState::Declined => Err(PayError::Declined(message())),
        PaymentState::Failed => Err(PayError::InvalidToken(message())),
        PaymentState::Pending => match &payment.last_error {
            Some(reason) if !payment.leased => Err(PayError::Unavailable(reason.clone())),
            _ => Err(PayError::InProgress),
        },
    }
}
