//! The auth service: users, sign-up, sign-in, sign-out and the session cookie.
//!
//! Layout (data flows one way: `http` → `flows` → `store` / `domain`):
//! - [`http`]: the `/api/users/*` routes; unpack requests, call a flow, shape the answer;
//! - [`flows`]: sign-up and sign-in, the only code that decides;
//! - [`store`]: SQL on the `users` table, taking a connection, never deciding;
//! - [`domain`]: e-mail and password rules and argon2id hashing, no I/O.
//! - [`app`] holds the service's state and name, which every layer imports; [`settings`] what
//!   it reads from flags and the environment. This file only composes the component.
//!
//! Auth publishes and consumes no events; every other service verifies the session cookie
//! itself with the shared key.

pub mod app;
pub mod domain;
pub mod flows;
pub mod http;
pub mod settings;
pub mod store;

pub use app::{Auth, NAME};
pub use settings::{AuthSettings, Limits};

use std::sync::Arc;

use sqlx::PgPool;
use ticketing_common::{
    Component, admin::ActionLog, component::Task, db, forwarded::Proxies, http::ReadyCheck,
    session::SessionKeys, settings::CommonSettings,
};

/// Auth's migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

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
        checks: vec![ReadyCheck::postgres("postgres:auth", pool.clone())],
        events: None,
    }
    .with_operations("/api/users", None, None, ActionLog::Postgres(pool))
}
