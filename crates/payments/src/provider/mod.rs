//! Who charges cards: the [`PaymentProvider`] interface, [`StripeClient`] for real money and
//! [`DevProvider`] for development, and [`Provider`], the one a running service uses.
//!
//! Both providers keep Stripe's idempotency rule: a request repeated with the same
//! idempotency key and the same parameters gets the first request's answer (the same charge,
//! or the same decline) instead of charging again.

mod dev;
pub mod stripe;

use std::future::Future;

use uuid::Uuid;

pub use dev::DevProvider;
pub use stripe::StripeClient;

/// One charge to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    /// Repeating a request with this key returns the first answer.
    pub idempotency_key: String,
    /// The order paid for (recorded with the charge, so a charge can always be traced back).
    pub order_id: Uuid,
    /// In the currency's smallest unit (cents); never a float.
    pub amount_cents: i64,
    /// Lower-case ISO code.
    pub currency: String,
    /// The buyer's payment method or card token.
    pub token: String,
}

/// A charge the provider accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// The provider's id for it (with Stripe, the PaymentIntent id).
    pub id: String,
    pub status: ChargeStatus,
    /// The card, when the provider says which (for the receipt).
    pub card: Option<Card>,
}

/// What a receipt shows of the card: its brand and last four digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    pub brand: String,
    pub last4: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeStatus {
    /// The money has moved.
    Succeeded,
    /// Accepted but not settled yet; a webhook will say how it ended.
    Processing,
}

/// Why a charge did not happen, or may not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChargeError {
    /// The card was declined; nothing was charged. The message is the provider's, for the
    /// buyer.
    #[error("declined: {0}")]
    Declined(String),
    /// The token names no usable payment method; nothing was charged.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// The provider refused our request itself before acting on it (our credentials, a
    /// parameter it does not accept): nothing was charged, and sending it again cannot
    /// help. The attempt ends; the buyer may try again (a new attempt, a new key).
    #[error("refused by the provider: {0}")]
    Refused(String),
    /// No answer we can trust (outage, timeout, rate limit, a concurrent request under the
    /// same key): the charge may or may not have happened. Only asking the provider (or a
    /// retry with the same idempotency key) can tell, so nothing may be marked either way.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
}

/// What the provider knows about an attempt whose answer we never got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// It has the attempt's charge: this is how it ended (a charge, or a decline).
    Outcome(Result<Charge, ChargeError>),
    /// It never saw the attempt: the request did not reach it.
    Nothing,
}

/// One refund to make: the whole of a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// Repeating a request with this key returns the first answer (one refund).
    pub idempotency_key: String,
    /// The charge to give back (with Stripe, the PaymentIntent id).
    pub charge_id: String,
    pub order_id: Uuid,
    pub amount_cents: i64,
}

/// A refund the provider made (or accepted and will finish).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// The provider's id for it (`re_...`).
    pub id: String,
}

/// Why a refund did not happen, or may not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundError {
    /// The provider refused it (already refunded, disputed, too old); its message. A person
    /// must look.
    #[error("refund refused: {0}")]
    Refused(String),
    /// No answer we can trust: asking again with the same key is safe.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
}

/// A payment provider.
pub trait PaymentProvider {
    /// A short name, recorded with each payment: `stripe`, `dev`.
    fn name(&self) -> &'static str;

    /// Whether the provider moves real money (Stripe with a live key): what a webhook's
    /// `livemode` must say.
    fn livemode(&self) -> bool {
        false
    }

    /// Charges once per idempotency key.
    fn charge(
        &self,
        request: &ChargeRequest,
    ) -> impl Future<Output = Result<Charge, ChargeError>> + Send;

    /// Asks what became of an attempt whose answer was lost (timeout, crash), without
    /// charging: found by the attempt's idempotency key. `Err` when the provider cannot say.
    fn find(&self, request: &ChargeRequest) -> impl Future<Output = Result<Found, String>> + Send;

    /// Refunds a charge once per idempotency key.
    fn refund(
        &self,
        request: &RefundRequest,
    ) -> impl Future<Output = Result<Refund, RefundError>> + Send;
}

/// The provider a service runs with (`PAYMENTS_PROVIDER`): Stripe, or the development
/// provider.
#[derive(Debug, Clone)]
pub enum Provider {
    Stripe(StripeClient),
    Dev(DevProvider),
}

impl PaymentProvider for Provider {
    fn name(&self) -> &'static str {
        match self {
            Provider::Stripe(stripe) => stripe.name(),
            Provider::Dev(dev) => dev.name(),
        }
    }

    fn livemode(&self) -> bool {
        match self {
            Provider::Stripe(stripe) => stripe.livemode(),
            Provider::Dev(dev) => dev.livemode(),
        }
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<Charge, ChargeError> {
        match self {
            Provider::Stripe(stripe) => stripe.charge(request).await,
            Provider::Dev(dev) => dev.charge(request).await,
        }
    }

    async fn find(&self, request: &ChargeRequest) -> Result<Found, String> {
        match self {
            Provider::Stripe(stripe) => stripe.find(request).await,
            Provider::Dev(dev) => dev.find(request).await,
        }
    }

    async fn refund(&self, request: &RefundRequest) -> Result<Refund, RefundError> {
        match self {
            Provider::Stripe(stripe) => stripe.refund(request).await,
            Provider::Dev(dev) => dev.refund(request).await,
        }
    }
}
