//! A payment as stored: one row per order, holding its latest attempt.

use sqlx::{Row, postgres::PgRow};
use uuid::Uuid;

/// Where an order's payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentState {
    /// Recorded before the provider is called. Either a request is calling the provider right
    /// now (it holds the lease), or the last call ended without an answer (a crash, a timeout,
    /// an outage): the next request calls again with the same idempotency key, which finds
    /// the charge if there was one.
    Pending,
    /// The provider accepted the payment but has not settled it; a webhook completes it.
    Processing,
    /// Charged. Final.
    Succeeded,
    /// The provider declined the card. Nothing was charged; a new request may try again.
    Declined,
    /// The provider refused the token. Nothing was charged; a new request may try again.
    Failed,
    /// Charged, then given back (by an operator, or because the order had been cancelled).
    /// Final.
    Refunded,
}

impl PaymentState {
    pub const fn as_str(self) -> &'static str {
        match self {
            PaymentState::Pending => "pending",
            PaymentState::Processing => "processing",
            PaymentState::Succeeded => "succeeded",
            PaymentState::Declined => "declined",
            PaymentState::Failed => "failed",
            PaymentState::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<PaymentState> {
        [
            PaymentState::Pending,
            PaymentState::Processing,
            PaymentState::Succeeded,
            PaymentState::Declined,
            PaymentState::Failed,
            PaymentState::Refunded,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
    }

    /// Whether the attempt ended without charging anything, so a new attempt may start.
    pub const fn is_refused(self) -> bool {
        matches!(self, PaymentState::Declined | PaymentState::Failed)
    }
}

/// An order's payment: its latest attempt and how it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The payment id answered to the buyer and carried by `payment.created`.
    pub id: Uuid,
    pub order_id: Uuid,
    /// The buyer; `None` for payments recorded before it was kept.
    pub user_id: Option<Uuid>,
    pub state: PaymentState,
    /// 1 for the first attempt; a new attempt starts only after a refused one.
    pub attempt: i32,
    /// `stripe` or `dev`.
    pub provider: String,
    /// What this attempt charges, copied from the order when it started: a retry of the
    /// attempt must send exactly the same parameters with the same idempotency key.
    pub amount_cents: i64,
    pub currency: String,
    pub token: String,
    /// The provider's charge (a PaymentIntent id with Stripe), once known.
    pub charge_id: Option<String>,
    /// The provider's message for a declined or failed attempt.
    pub failure_message: Option<String>,
    /// Why the last call of a pending attempt got no answer.
    pub last_error: Option<String>,
    /// Identifies the request holding the attempt.
    pub lease_token: Option<Uuid>,
    /// Whether that request's lease is still running, by the database's clock.
    pub leased: bool,
    /// The card, when the provider said (for the receipt).
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub created_at: time::OffsetDateTime,
}

impl Payment {
    /// The provider's idempotency key of this payment's current attempt.
    pub fn idempotency_key(&self) -> String {
        idempotency_key(self.order_id, self.attempt)
    }
}

/// The provider's idempotency key of an attempt: the order id itself for the first attempt,
/// so every request and every retry for an order charges under one key. A card declined
/// under that key would be declined again forever (the provider replays the stored answer,
/// and refuses other parameters under a used key), so the buyer's next attempt with another
/// card gets `<order id>:<attempt>`. Attempt n+1 starts only after attempt n was refused, so
/// at most one key can ever succeed.
pub fn idempotency_key(order_id: Uuid, attempt: i32) -> String {
    if attempt <= 1 {
        order_id.to_string()
    } else {
        format!("{order_id}:{attempt}")
    }
}

/// Reads the columns of `store::payments::COLUMNS`.
impl<'r> sqlx::FromRow<'r, PgRow> for Payment {
    fn from_row(row: &'r PgRow) -> sqlx::Result<Self> {
        let state: String = row.try_get("state")?;
        let state = PaymentState::parse(&state).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "state".into(),
            source: format!("unknown payment state {state:?}").into(),
        })?;
        Ok(Payment {
            id: row.try_get("id")?,
            order_id: row.try_get("order_id")?,
            user_id: row.try_get("user_id")?,
            state,
            attempt: row.try_get("attempt")?,
            provider: row.try_get("provider")?,
            amount_cents: row.try_get("amount_cents")?,
            currency: row.try_get("currency")?,
            token: row.try_get("token")?,
            charge_id: row.try_get("charge_id")?,
            failure_message: row.try_get("failure_message")?,
            last_error: row.try_get("last_error")?,
            lease_token: row.try_get("lease_token")?,
            leased: row.try_get("leased")?,
            card_brand: row.try_get("card_brand")?,
            card_last4: row.try_get("card_last4")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_attempt_is_keyed_by_the_order_id_alone() {
        let order = Uuid::now_v7();
        assert_eq!(idempotency_key(order, 1), order.to_string());
        assert_eq!(idempotency_key(order, 2), format!("{order}:2"));
        assert_ne!(idempotency_key(order, 2), idempotency_key(order, 3));
    }

    #[test]
    fn states_round_trip_and_only_refusals_allow_a_new_attempt() {
        for state in [
            PaymentState::Pending,
            PaymentState::Processing,
            PaymentState::Succeeded,
            PaymentState::Declined,
            PaymentState::Failed,
            PaymentState::Refunded,
        ] {
            assert_eq!(PaymentState::parse(state.as_str()), Some(state));
        }
        assert_eq!(PaymentState::parse("paid"), None);
        assert!(PaymentState::Declined.is_refused() && PaymentState::Failed.is_refused());
        assert!(!PaymentState::Pending.is_refused());
        assert!(!PaymentState::Processing.is_refused());
        assert!(!PaymentState::Succeeded.is_refused());
        assert!(!PaymentState::Refunded.is_refused());
    }
}
