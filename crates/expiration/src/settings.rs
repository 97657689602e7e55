//! The settings only expiration reads (flags and environment variables).

/// Settings only expiration reads.
#[derive(Debug, Clone, clap::Args)]
pub struct ExpirationSettings {
    /// How long a claimed job may stay unacknowledged before another worker takes it.
    #[arg(
        long,
        env = "EXPIRATION_LEASE_SECONDS",
        default_value_t = 30,
        global = true
    )]
    pub expiration_lease_seconds: u64,

    /// Workers per process.
    #[arg(long, env = "EXPIRATION_WORKERS", default_value_t = 1, global = true)]
    pub expiration_workers: usize,
}
