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
//! - [`app`] holds the service's state and name, which every layer imports; [`settings`] what
//!   it reads from flags and the environment. This file only composes the component.
//!
//! A ticket is never sold twice because of one partial unique index (see the migration), not
//! because of any check in this code.

pub mod app;
pub mod domain;
pub mod flows;
pub mod http;
pub mod listeners;
pub mod settings;
pub mod store;

pub use app::{NAME, Orders};
pub use settings::OrdersSettings;

use std::time::Duration;

use sqlx::PgPool;
use ticketing_common::{Component, bus::Bus, component::Task, db, settings::CommonSettings};

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
    let mut component = Component::with_database(
        NAME,
        "/api/orders",
        router,
        &orders.pool,
        bus,
        subscriptions,
    );
    component.tasks.push(Task::new("orders-sweep", move |stop| {
        flows::run_sweep(orders, stop)
    }));
    component
}
