//! The payments service: a buyer pays for a live order, exactly once, in integer cents.
//!
//! Layout (data flows one way: `http` / `listeners` → `flows` → `store` / `domain` /
//! `provider`):
//! - [`http`]: `POST /api/payments` and the Stripe webhook `POST /api/payments/webhook`;
//! - [`listeners`]: `order.created` / `order.cancelled` keep the order replica;
//! - [`flows`]: every decision: claiming a payment attempt, charging, recording the outcome
//!   with its `payment.created` event in one transaction; webhook events; the replica;
//! - [`provider`]: the payment-provider interface, a thin Stripe client and the development
//!   provider;
//! - [`store`]: SQL, taking a connection;
//! - [`domain`]: input parsing, payment states, idempotency keys, webhook signatures; no I/O.
//! - [`app`] holds the service's state and name, which every layer imports; [`settings`] what
//!   it reads from flags and the environment. This file only composes the component.
//!
//! An order is charged at most once because of three things together: the `payments` table
//! allows one row per order (the attempt is recorded before the provider is called), the
//! provider's idempotency key is derived from the order id (so a retried or taken-over call
//! finds the same charge), and one request at a time holds the attempt's lease (concurrent
//! requests wait for its outcome instead of calling the provider themselves).

pub mod app;
pub mod domain;
pub mod flows;
pub mod http;
pub mod listeners;
pub mod provider;
pub mod settings;
pub mod store;

pub use app::{NAME, Payments};
pub use settings::{PaymentsSettings, Unconfigured};

use sqlx::PgPool;
use ticketing_common::{Component, bus::Bus, component::Task, db, settings::CommonSettings};

use crate::{
    provider::{PaymentProvider as _, Provider},
    settings::choose_provider,
};

/// Payments' migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Runs the outbox schema and payments' migrations.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    db::migrate_service(pool, &MIGRATOR, NAME, true).await
}

/// Connects (creating the database if needed), migrates, picks the provider and builds the
/// component. Refuses to start, with one line naming the setting, when the provider is not
/// configured soundly (see [`settings::choose_provider`]).
pub async fn build(
    common: &CommonSettings,
    settings: &PaymentsSettings,
    bus: &Bus,
    unconfigured: Unconfigured,
) -> anyhow::Result<Component> {
    let (provider, webhook_secret) = choose_provider(settings, unconfigured)?;
    let pool = db::open_service(common, settings.payments_database_url.as_ref(), NAME, 32).await?;
    migrate(&pool).await?;
    match &provider {
        Provider::Stripe(stripe) => tracing::info!(
            api_base = %settings.stripe_api_base,
            currency = %settings.stripe_currency,
            livemode = stripe.livemode(),
            "payment provider: Stripe"
        ),
        Provider::Dev(_) => tracing::warn!(
            "payment provider: development (tok_visa succeeds, tok_chargeDeclined is declined, no money moves; set PAYMENTS_PROVIDER=stripe with STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET for real payments)"
        ),
    }
    let payments = Payments {
        provider,
        currency: settings.stripe_currency.clone(),
        webhook_secret,
        // Three provider timeouts: a live holder is never taken over, a dead one soon is.
        attempt_lease: provider::stripe::DEFAULT_TIMEOUT * 3,
        ..Payments::new(pool)
    };
    Ok(component(payments, bus))
}

/// The component over a migrated pool: routes, outbox relay, order replica listeners, and the
/// reconciler of unfinished attempts and refunds.
pub fn component(payments: Payments, bus: &Bus) -> Component {
    let router = http::router(payments.clone());
    let subscriptions = listeners::subscriptions(&payments);
    let mut component = Component::with_database(
        NAME,
        "/api/payments",
        router,
        &payments.pool,
        bus,
        subscriptions,
    );
    component
        .tasks
        .push(Task::new("payments-reconcile", move |stop| {
            flows::run_reconciler(payments, stop)
        }));
    component
}
