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

pub mod domain;
pub mod flows;
pub mod http;
pub mod store;

use std::sync::Arc;

use sqlx::PgPool;
use ticketing_common::{
    Component, Secret, db, http::ReadyCheck, ratelimit::RateLimiter, session::SessionKeys,
    settings::CommonSettings,
};

/// The component's name, also its database suffix.
pub const NAME: &str = "auth";

/// Settings only auth reads.
#[derive(Debug, Clone, clap::Args)]
pub struct AuthSettings {
    /// Auth's own database, for separate deployment; defaults to `<namespace>_auth` on the
    /// `DATABASE_URL` server.
    #[arg(long, env = "AUTH_DATABASE_URL", hide_env_values = true, global = true)]
    pub auth_database_url: Option<Secret<String>>,

    /// Sign-in and sign-up attempts allowed per client address per minute; 0 turns it off.
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

/// Connects (creating the database if needed), migrates, and builds the component.
pub async fn build(
    common: &CommonSettings,
    settings: &AuthSettings,
    keys: Arc<SessionKeys>,
) -> anyhow::Result<Component> {
    let pool = db::open_service(common, settings.auth_database_url.as_ref(), NAME, 16).await?;
    db::migrate_service(&pool, &MIGRATOR, NAME, false).await?;
    let limiter = RateLimiter::new(
        settings.rate_limit_per_minute,
        common.trusted_proxies.clone(),
    );
    Ok(component(pool, keys, limiter))
}

/// The component over an already migrated pool.
pub fn component(pool: PgPool, keys: Arc<SessionKeys>, limiter: RateLimiter) -> Component {
    Component {
        name: NAME,
        router: http::router(
            http::AppState {
                pool: pool.clone(),
                keys,
            },
            limiter,
        ),
        tasks: Vec::new(),
        checks: vec![ReadyCheck::postgres("postgres:auth", pool)],
    }
}
