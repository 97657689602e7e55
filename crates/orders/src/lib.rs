//! The orders service: a buyer holds a ticket for a window, pays, or lets the order expire.
//!
//! Layout (data flows one way: `http` / `listeners` → `flows` → `store` / `domain`):
//! - [`http`]: `/api/orders` routes;
//! - [`listeners`]: `ticket.created` / `ticket.updated` keep the ticket replica,
//!   `expiration.complete` cancels an unpaid order, `payment.created` completes a paid one;
//! - [`flows`]: every decision, each write in one transaction with its outbox event; the
//!   safety sweep that cancels orders whose expiry never arrived;
//! - [`store`]: SQL, taking a connection;
//! - [`domain`]: the order's public shape and its events, ticket id parsing, no I/O.
//!
//! A ticket is never sold twice because of one partial unique index (see the migration), not
//! because of any check in this code.

pub mod app;
pub mod domain;
pub mod flows;
pub mod http;
pub mod listeners;
pub mod store;

pub use app::{NAME, Orders};

use std::time::Duration;

use sqlx::PgPool;
use ticketing_common::{
    Component, Secret, bus::Bus, component::Task, db, settings::CommonSettings,
};

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

/// Orders' migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Runs the outbox schema and orders' migrations.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    db::migrate_service(pool, &MIGRATOR, NAME, true).await
}

/// Connects (creating the database if needed), migrates, and builds the component.
pub async fn build(
    common: &CommonSettings,
    settings: &OrdersSettings,
    bus: &Bus,
) -> anyhow::Result<Component> {
    let pool = db::open_service(common, settings.orders_database_url.as_ref(), NAME, 32).await?;
    migrate(&pool).await?;
    let orders = Orders {
        pool,
        window: Duration::from_secs(settings.expiration_window_seconds.max(1)),
        sweep_grace: Duration::from_secs(settings.expiration_sweep_grace_seconds),
        sweep_interval: Duration::from_secs(settings.expiration_sweep_interval_seconds.max(1)),
        max_live_per_buyer: Some(settings.max_live_orders_per_user).filter(|cap| *cap > 0),
    };
    Ok(component(orders, bus))
}

/// The component over a migrated pool: routes, relay, listeners, safety sweep.
pub fn component(orders: Orders, bus: &Bus) -> Component {
    let router = http::router(orders.clone());
    let subscriptions = listeners::subscriptions(&orders);
    let mut component = Component::with_database(NAME, router, &orders.pool, bus, subscriptions);
    component.tasks.push(Task::new("orders-sweep", move |stop| {
        flows::run_sweep(orders, stop)
    }));
    component
}
