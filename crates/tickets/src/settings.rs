//! The settings only tickets reads (flags and environment variables).

use clap::ArgAction;
use ticketing_common::{Secret, cache::CacheSettings};

/// Settings only tickets reads.
#[derive(Debug, Clone, clap::Args)]
pub struct TicketsSettings {
    /// Tickets' own database, for separate deployment; defaults to `<namespace>_tickets` on
    /// the `DATABASE_URL` server.
    #[arg(
        long,
        env = "TICKETS_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub tickets_database_url: Option<Secret<String>>,

    /// Redis for the read cache; defaults to `REDIS_URL`. May evict. Under Sentinel:
    /// `redis+sentinel://host:port,host:port,host:port/<master name>`.
    #[arg(long, env = "REDIS_CACHE_URL", hide_env_values = true, global = true)]
    pub redis_cache_url: Option<Secret<String>>,

    /// How long a cached read lives in Redis (± 10 % jitter).
    #[arg(long, env = "CACHE_TTL_SECONDS", default_value_t = 60, global = true)]
    pub cache_ttl_seconds: u64,

    /// Bytes the read cache may keep in this process's memory (keys and values); past it
    /// the oldest entries are evicted.
    #[arg(long, env = "CACHE_MEMORY_BYTES", default_value_t = CacheSettings::DEFAULT_MEMORY_BYTES,
        value_parser = clap::value_parser!(u64).range(0..=(1u64 << 40)), global = true)]
    pub cache_memory_bytes: u64,

    /// Turn the read cache off (every read goes to PostgreSQL), e.g. to compare.
    #[arg(long, env = "CACHE_ENABLED", default_value_t = true, action = ArgAction::Set, global = true)]
    pub cache_enabled: bool,
}
