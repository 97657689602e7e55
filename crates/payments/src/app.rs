//! What every part of the payments service shares: its name and its state. A leaf module:
//! `http`, `listeners` and `flows` import it, and it imports none of them.

use std::time::Duration;

use sqlx::PgPool;
use ticketing_common::Secret;

use crate::{
    domain::Currency,
    provider::{DevProvider, Provider},
};

/// The component's name: database suffix, consumer and metric label.
pub const NAME: &str = "payments";

/// Everything the service's flows need.
#[derive(Debug, Clone)]
pub struct Payments {
    pub pool: PgPool,
    /// Who charges cards.
    pub provider: Provider,
    /// The currency of every charge.
    pub currency: Currency,
    /// Verifies `Stripe-Signature` on webhooks; `None` refuses every webhook.
    pub webhook_secret: Option<Secret<String>>,
    /// How long one request holds a payment attempt while it calls the provider. Concurrent
    /// requests for the same order wait this long at most; after it, a request may take the
    /// attempt over (its holder is presumed dead) and call the provider again with the same
    /// idempotency key. Must exceed the provider's own timeout.
    pub attempt_lease: Duration,
}

impl Payments {
    /// The service over a migrated pool with the development provider, `usd`, no webhook
    /// secret, and a 30 s attempt lease.
    pub fn new(pool: PgPool) -> Self {
        Payments {
            pool,
            provider: Provider::Dev(DevProvider::new()),
            currency: Currency::default(),
            webhook_secret: None,
            attempt_lease: Duration::from_secs(30),
        }
    }
}
