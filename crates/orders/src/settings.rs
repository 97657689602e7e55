//! The settings only orders reads (flags and environment variables).

use ticketing_common::Secret;

/// `EXPIRATION_WINDOW_SECONDS` unless set.
pub const DEFAULT_WINDOW_SECONDS: u64 = 900;
/// `EXPIRATION_SWEEP_GRACE_SECONDS` unless set.
pub const DEFAULT_SWEEP_GRACE_SECONDS: u64 = 60;
/// `EXPIRATION_SWEEP_INTERVAL_SECONDS` unless set.
pub const DEFAULT_SWEEP_INTERVAL_SECONDS: u64 = 10;
/// `MAX_LIVE_ORDERS_PER_USER` unless set.
pub const DEFAULT_MAX_LIVE_ORDERS_PER_USER: u32 = 10;

/// Settings only orders reads.
#[derive(Debug, Clone, clap::Args)]
pub struct OrdersSettings {
    /// Orders' own database, for separate deployment; defaults to `<namespace>_orders` on the
    /// `DATABASE_URL` server.
    #[arg(
        long,
        env = "ORDERS_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub orders_database_url: Option<Secret<String>>,

    /// How long an order may stay unpaid: `expiresAt = now + this`.
    #[arg(long, env = "EXPIRATION_WINDOW_SECONDS", default_value_t = DEFAULT_WINDOW_SECONDS,
        value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub expiration_window_seconds: u64,

    /// The safety sweep cancels a live order only this long after its `expiresAt`, leaving
    /// the expiration service time to do it first.
    #[arg(
        long,
        env = "EXPIRATION_SWEEP_GRACE_SECONDS",
        default_value_t = DEFAULT_SWEEP_GRACE_SECONDS,
        global = true
    )]
    pub expiration_sweep_grace_seconds: u64,

    /// Unpaid orders (`created`, `awaiting:payment`) one buyer may hold at once; 0: no cap.
    /// Without a cap one account could hold every ticket on sale.
    #[arg(
        long,
        env = "MAX_LIVE_ORDERS_PER_USER",
        default_value_t = DEFAULT_MAX_LIVE_ORDERS_PER_USER,
        global = true
    )]
    pub max_live_orders_per_user: u32,

    /// How often the safety sweep looks for overdue orders.
    #[arg(long, env = "EXPIRATION_SWEEP_INTERVAL_SECONDS", default_value_t = DEFAULT_SWEEP_INTERVAL_SECONDS,
        value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub expiration_sweep_interval_seconds: u64,
}
