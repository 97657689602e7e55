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

pub mod app;
pub mod cache;
pub mod domain;
pub mod flows;
pub mod http;
pub mod listeners;
pub mod store;

pub use app::{NAME, Tickets};

use std::time::Duration;

use clap::ArgAction;
use sqlx::PgPool;
use ticketing_common::{
    Component, Secret, bus::Bus, cache::CacheSettings, component::Task, db, http::ReadyCheck,
    settings::CommonSettings,
};

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

    /// Redis for the read cache; defaults to `REDIS_URL`. May evict.
    #[arg(long, env = "REDIS_CACHE_URL", hide_env_values = true, global = true)]
    pub redis_cache_url: Option<Secret<String>>,

    /// How long a cached read lives in Redis (± 10 % jitter).
    #[arg(long, env = "CACHE_TTL_SECONDS", default_value_t = 60, global = true)]
    pub cache_ttl_seconds: u64,

    /// Bytes the read cache may keep in this process's memory (keys and values); past it
    /// the oldest entries are evicted.
    #[arg(long, env = "CACHE_MEMORY_BYTES", default_value_t = 32 * 1024 * 1024,
        value_parser = clap::value_parser!(u64).range(0..=(1u64 << 40)), global = true)]
    pub cache_memory_bytes: u64,

    /// Turn the read cache off (every read goes to PostgreSQL), e.g. to compare.
    #[arg(long, env = "CACHE_ENABLED", default_value_t = true, action = ArgAction::Set, global = true)]
    pub cache_enabled: bool,
}

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
    let mut component = Component::with_database(NAME, router, &tickets.pool, bus, subscriptions);
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
