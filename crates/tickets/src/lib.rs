//! The tickets service: sellers list tickets, everyone reads them (through a cache), orders
//! reserve and release them through events.
//!
//! Layout (data flows one way: `http` / `listeners` → `flows` → `store` / `domain`):
//! - [`http`]: `/api/tickets` routes;
//! - [`listeners`]: `order.created` reserves, `order.cancelled` releases;
//! - [`flows`]: every decision, each write in one transaction with its outbox event, then
//!   cache invalidation after commit;
//! - [`store`]: SQL, taking a connection;
//! - [`domain`]: titles, prices and the ticket's public shape, no I/O;
//! - [`cache`]: "get ticket" / "list page" over the shared read cache.
//! - [`app`] holds the service's state and name, which every layer imports; [`settings`] what
//!   it reads from flags and the environment. This file only composes the component.

pub mod app;
pub mod cache;
pub mod domain;
pub mod flows;
pub mod http;
pub mod listeners;
pub mod settings;
pub mod store;

pub use app::{NAME, Tickets};
pub use settings::TicketsSettings;

use std::time::Duration;

use sqlx::PgPool;
use ticketing_common::{
    Component, bus::Bus, cache::CacheSettings, component::Task, db, http::ReadyCheck,
    settings::CommonSettings,
};

/// Tickets' migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Runs the outbox schema and tickets' migrations.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    db::migrate_service(pool, &MIGRATOR, NAME, true).await
}

/// Connects (creating the database if needed), migrates, and builds the component.
pub async fn build(
    common: &CommonSettings,
    settings: &TicketsSettings,
    bus: &Bus,
) -> anyhow::Result<Component> {
    let pool = db::open_service(common, settings.tickets_database_url.as_ref(), NAME, 32).await?;
    migrate(&pool).await?;
    let redis_url = settings
        .redis_cache_url
        .as_ref()
        .unwrap_or(&common.redis_url)
        .expose()
        .clone();
    let cache_settings = CacheSettings {
        enabled: settings.cache_enabled,
        ttl: Duration::from_secs(settings.cache_ttl_seconds.max(1)),
        memory_bytes: settings.cache_memory_bytes,
        ..CacheSettings::default()
    };
    let cache =
        cache::TicketCache::new(&redis_url, common.namespace.redis_prefix(), cache_settings)?;
    Ok(component(Tickets { pool, cache }, bus))
}

/// The component over a migrated pool and a cache: routes, relay, listeners, cache upkeep.
pub fn component(tickets: Tickets, bus: &Bus) -> Component {
    let router = http::router(tickets.clone());
    let subscriptions = listeners::subscriptions(&tickets);
    let mut component = Component::with_database(
        NAME,
        "/api/tickets",
        router,
        &tickets.pool,
        bus,
        subscriptions,
    );
    let cache = tickets.cache.clone();
    component
        .tasks
        .push(Task::new("tickets-cache", move |stop| cache.run(stop)));
    // Reported, not required: reads fall back to PostgreSQL without it.
    component.checks.push(
        ReadyCheck::new("redis:cache", move || {
            let cache = tickets.cache.clone();
            async move { cache.ping().await }
        })
        .optional(),
    );
    component
}
