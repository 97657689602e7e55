//! What every part of the orders service shares: its name and its state. A leaf module:
//! `http`, `listeners` and `flows` import it, and it imports none of them.

use std::time::Duration;

use sqlx::PgPool;

use crate::settings;

/// The component's name: database suffix, consumer and metric label.
pub const NAME: &str = "orders";

/// Everything the service's flows need.
#[derive(Debug, Clone)]
pub struct Orders {
    pub pool: PgPool,
    /// How long an order may stay unpaid.
    pub window: Duration,
    /// How long past its expiry a live order waits before the sweep cancels it.
    pub sweep_grace: Duration,
    /// The pause between two sweeps.
    pub sweep_interval: Duration,
    /// Unpaid orders one buyer may hold at once; `None`: no cap.
    pub max_live_per_buyer: Option<u32>,
}

impl Orders {
    /// The service over a migrated pool with the settings' default timings (900 s window,
    /// 60 s grace, a sweep every 10 s) and cap (10 unpaid orders per buyer).
    pub fn new(pool: PgPool) -> Self {
        Orders {
            pool,
            window: Duration::from_secs(settings::DEFAULT_WINDOW_SECONDS),
            sweep_grace: Duration::from_secs(settings::DEFAULT_SWEEP_GRACE_SECONDS),
            sweep_interval: Duration::from_secs(settings::DEFAULT_SWEEP_INTERVAL_SECONDS),
            max_live_per_buyer: Some(settings::DEFAULT_MAX_LIVE_ORDERS_PER_USER),
        }
    }
}
