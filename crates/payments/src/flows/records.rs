//! What a buyer (or an operator) may read of an order's payments (the receipt), and what
//! operators must look at (the attention list).

use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    app::Payments,
    domain::PaymentState,
    store::{
        orders, payments,
        refunds::{self, RefundRow},
        unmatched_charges::{self, UnmatchedCharge},
    },
};

/// One payment as the contract shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    pub id: Uuid,
    pub order_id: Uuid,
    pub amount_cents: i64,
    /// `succeeded`, `refunded`, `declined` or `pending`.
    pub status: &'static str,
    pub created_at: OffsetDateTime,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error("Order not found")]
    NotFound,
    #[error("Not the order's owner")]
    NotOwner,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for RecordsError {
    fn from(error: sqlx::Error) -> Self {
        RecordsError::Unexpected(anyhow::Error::new(error).context("database query failed"))
    }
}

/// An order's payments, for its owner or an operator.
pub async fn payment_records(
    app: &Payments,
    caller: Uuid,
    operator: bool,
    order_id: Uuid,
) -> Result<Vec<PaymentRecord>, RecordsError> {
    let mut conn = app.pool.acquire().await?;
    let order = orders::find(&mut conn, order_id)
        .await?
        .ok_or(RecordsError::NotFound)?;
    if order.user_id != caller && !operator {
        return Err(RecordsError::NotOwner);
    }
    let payment = payments::find_by_order(&mut conn, order_id).await?;
    Ok(payment
        .into_iter()
        .map(|payment| PaymentRecord {
            id: payment.id,
            order_id: payment.order_id,
            amount_cents: payment.amount_cents,
            status: match payment.state {
                PaymentState::Succeeded => "succeeded",
                PaymentState::Refunded => "refunded",
                PaymentState::Declined | PaymentState::Failed => "declined",
                PaymentState::Pending | PaymentState::Processing => "pending",
            },
            created_at: payment.created_at,
            card_brand: payment.card_brand,
            card_last4: payment.card_last4,
        })
        .collect())
}

/// How many items of each kind the attention list shows.
const ATTENTION_LIMIT: i64 = 200;

/// What needs a person: money no payment holds, and refunds the provider refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attention {
    pub unmatched_charges: Vec<UnmatchedCharge>,
    pub refused_refunds: Vec<RefundRow>,
}

/// The operators' attention list, newest first.
pub async fn attention(app: &Payments) -> anyhow::Result<Attention> {
    let mut conn = app.pool.acquire().await?;
    Ok(Attention {
        unmatched_charges: unmatched_charges::latest(&mut conn, ATTENTION_LIMIT).await?,
        refused_refunds: refunds::refused(&mut conn, ATTENTION_LIMIT).await?,
    })
}
