//! The auth service: users, sign-up, sign-in, sign-out and the session cookie.
//!
//! Layout (data flows one way: `http` → `flows` → `store` / `domain`):
//! - [`http`]: the `/api/users/*` routes; unpack requests, call a flow, shape the answer;
//! - [`flows`]: sign-up and sign-in, the only code that decides;
//! - [`store`]: SQL on the `users` table, taking a connection, never deciding;
//! - [`domain`]: e-mail and password rules and argon2id hashing, no I/O.
//!
//! Auth publishes and consumes no events; every other service verifies the session cookie
//! itself with the shared key.

pub mod app;
pub mod domain;
pub mod flows;
pub mod http;
pub mod store;

pub use app::{Auth, NAME};

use std::{sync::Arc, time::Duration};

use sqlx::PgPool;
use ticketing_common::{
    Component, Secret,
    component::Task,
    db,
    forwarded::Proxies,
    http::ReadyCheck,
    ratelimit::{RateLimiter, SharedLimit},
    session::SessionKeys,
    settings::{CommonSettings, Namespace},
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

/// Auth's migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

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

/// Connects (creating the database if needed), migrates, and builds the component. `proxies`
/// says whose `X-Forwarded-For` is believed.
pub async fn build(
    common: &CommonSettings,
    settings: &AuthSettings,
    keys: Arc<SessionKeys>,
    proxies: Proxies,
) -> anyhow::Result<Component> {
    let pool = db::open_service(common, settings.auth_database_url.as_ref(), NAME, 16).await?;
    db::migrate_service(&pool, &MIGRATOR, NAME, false).await?;
    let limits = Limits::new(
        settings.rate_limit_per_minute,
        proxies,
        common.queue_redis_url(),
        &common.namespace,
    )?;
    Ok(component(pool, keys, limits))
}

/// The component over an already migrated pool. With a revoked-session store in `keys`, it
/// also runs the task that writes sign-outs Redis could not take at once.
pub fn component(pool: PgPool, keys: Arc<SessionKeys>, limits: Limits) -> Component {
    let mut tasks = Vec::new();
    if let Some(revocations) = keys.revocations().cloned() {
        tasks.push(Task::new("auth-revocation-flush", move |stop| async move {
            revocations.run_flush(stop).await
        }));
    }
    Component {
        name: NAME,
        router: http::router(
            Auth {
                pool: pool.clone(),
                keys,
                failed_signins: limits.failed_signins,
            },
            limits.per_address,
        ),
        tasks,
        checks: vec![ReadyCheck::postgres("postgres:auth", pool)],
        events: None,
    }
}
