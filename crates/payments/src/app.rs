//! What every part of the payments service shares: its name and its state. A leaf module:
//! `http`, `listeners` and `flows` import it, and it imports none of them.

use std::time::Duration;

use sqlx::PgPool;
use ticketing_common::Secret;

use crate::{
    domain::Currency,
    provider::{DevProvider, Provider},
    store::arrivals::Arrivals,
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
    /// idempotency key. Must exceed the provider's own timeout. Refunds are held the same way.
    pub attempt_lease: Duration,
    /// Wakes requests waiting for an order the replica has not learnt yet.
    pub arrivals: Arrivals,
    /// How long a payment for an order the replica does not know waits for it to arrive.
    pub order_wait: Duration,
    /// How often the reconciler looks for unfinished attempts and refunds.
    pub reconcile_interval: Duration,
    /// Card testing: this many declined attempts by one buyer within
    /// [`DECLINE_WINDOW`] and further attempts are refused (429).
    pub declines_allowed: i64,
}

/// How long a payment waits for an order created a moment ago (`CONTRACT.md`: 2 s).
pub const DEFAULT_ORDER_WAIT: Duration = Duration::from_secs(2);
/// Declines counted against a buyer are those of the last ten minutes.
pub const DECLINE_WINDOW: Duration = Duration::from_secs(600);
/// Declined attempts allowed per buyer within [`DECLINE_WINDOW`].
pub const DEFAULT_DECLINES_ALLOWED: i64 = 5;
/// How often the reconciler runs.
pub const DEFAULT_RECONCILE_INTERVAL: Duration = Duration::from_secs(10);

impl Payments {
    /// The service over a migrated pool with the development provider, `usd`, no webhook
    /// secret, a 30 s attempt lease and the contract's waits and limits.
    pub fn new(pool: PgPool) -> Self {
        Payments {
            arrivals: Arrivals::new(pool.clone()),
            pool,
            provider: Provider::Dev(DevProvider::new()),
            currency: Currency::default(),
            webhook_secret: None,
            attempt_lease: Duration::from_secs(30),
            order_wait: DEFAULT_ORDER_WAIT,
            reconcile_interval: DEFAULT_RECONCILE_INTERVAL,
            declines_allowed: DEFAULT_DECLINES_ALLOWED,
        }
    }
}
