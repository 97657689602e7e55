//! The settings only orders reads (flags and environment variables).

use ticketing_common::Secret;

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
    #[arg(long, env = "EXPIRATION_WINDOW_SECONDS", default_value_t = 900,
        value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub expiration_window_seconds: u64,

    /// The safety sweep cancels a live order only this long after its `expiresAt`, leaving
    /// the expiration service time to do it first.
    #[arg(
        long,
        env = "EXPIRATION_SWEEP_GRACE_SECONDS",
        default_value_t = 60,
        global = true
    )]
    pub expiration_sweep_grace_seconds: u64,

    /// Unpaid orders (`created`, `awaiting:payment`) one buyer may hold at once; 0: no cap.
    /// Without a cap one account could hold every ticket on sale.
    #[arg(
        long,
        env = "MAX_LIVE_ORDERS_PER_USER",
        default_value_t = 10,
        global = true
    )]
    pub max_live_orders_per_user: u32,

    /// How often the safety sweep looks for overdue orders.
    #[arg(long, env = "EXPIRATION_SWEEP_INTERVAL_SECONDS", default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub expiration_sweep_interval_seconds: u64,
}
