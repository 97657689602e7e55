//! The settings only auth reads, and the sign-in limits they make.

use std::time::Duration;

use ticketing_common::{
    Secret,
    forwarded::Proxies,
    ratelimit::{RateLimiter, SharedLimit},
    settings::Namespace,
};

/// Failed sign-ins allowed per account (per lower-cased e-mail as submitted, whether or not
/// an account has it) per minute, across every replica.
pub const FAILED_SIGNINS_PER_ACCOUNT: u32 = 10;

/// Settings only auth reads.
#[derive(Debug, Clone, clap::Args)]
pub struct AuthSettings {
    /// Auth's own database, for separate deployment; defaults to `<namespace>_auth` on the
    /// `DATABASE_URL` server.
    #[arg(long, env = "AUTH_DATABASE_URL", hide_env_values = true, global = true)]
    pub auth_database_url: Option<Secret<String>>,

    /// Sign-in and sign-up attempts allowed per client address per minute; 0 turns every
    /// sign-in limit off (also the per-account limit of 10 failed sign-ins a minute).
    #[arg(
        long,
        env = "RATE_LIMIT_PER_MINUTE",
        default_value_t = 30,
        global = true
    )]
    pub rate_limit_per_minute: u32,
}

/// The limits on sign-in and sign-up.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Attempts per client address (sign-in and sign-up).
    pub per_address: RateLimiter,
    /// Failed sign-ins per account, shared by every replica; `None` turns it off.
    pub failed_signins: Option<SharedLimit>,
}

impl Limits {
    /// No limits at all.
    pub fn none() -> Self {
        Limits {
            per_address: RateLimiter::new(0, Proxies::none()),
            failed_signins: None,
        }
    }

    /// `per_minute` attempts per client address (who the client is: `proxies`) and
    /// [`FAILED_SIGNINS_PER_ACCOUNT`] failed sign-ins a minute per e-mail, counted in the
    /// queue Redis at `redis_url` (connected on first use); `per_minute == 0`: no limits.
    pub fn new(
        per_minute: u32,
        proxies: Proxies,
        redis_url: &str,
        namespace: &Namespace,
    ) -> anyhow::Result<Self> {
        let failed_signins = if per_minute == 0 {
            None
        } else {
            Some(SharedLimit::new(
                ticketing_common::redis::lazy(redis_url)?,
                namespace,
                "failed-signin",
                FAILED_SIGNINS_PER_ACCOUNT,
                Duration::from_secs(60),
            ))
        };
        Ok(Limits {
            per_address: RateLimiter::new(per_minute, proxies),
            failed_signins,
        })
    }
}
