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
//!
//! An order is charged at most once because of three things together: the `payments` table
//! allows one row per order (the attempt is recorded before the provider is called), the
//! provider's idempotency key is derived from the order id (so a retried or taken-over call
//! finds the same charge), and one request at a time holds the attempt's lease (concurrent
//! requests wait for its outcome instead of calling the provider themselves).

pub mod domain;
pub mod flows;
pub mod http;
pub mod listeners;
pub mod provider;
pub mod store;

use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use ticketing_common::{
    Component, Secret,
    bus::{Bus, outbox},
    component::Task,
    db,
    http::ReadyCheck,
    settings::CommonSettings,
};

use crate::{
    domain::Currency,
    provider::{DevProvider, Provider, StripeClient},
};

/// The component's name: database suffix, consumer and metric label.
pub const NAME: &str = "payments";

/// Settings only payments reads.
#[derive(Debug, Clone, clap::Args)]
pub struct PaymentsSettings {
    /// Payments' own database, for separate deployment; defaults to `<namespace>_payments`
    /// on the `DATABASE_URL` server.
    #[arg(
        long,
        env = "PAYMENTS_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub payments_database_url: Option<Secret<String>>,

    /// Stripe secret API key (`sk_...`). When set, payments are charged through Stripe;
    /// otherwise the development provider is used (`tok_visa` succeeds, `tok_chargeDeclined`
    /// is declined, no money moves).
    #[arg(long, env = "STRIPE_SECRET_KEY", hide_env_values = true, global = true)]
    pub stripe_secret_key: Option<Secret<String>>,

    /// The signing secret of the Stripe webhook endpoint (`whsec_...`). Without it,
    /// `POST /api/payments/webhook` refuses every event.
    #[arg(
        long,
        env = "STRIPE_WEBHOOK_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub stripe_webhook_secret: Option<Secret<String>>,

    /// Base URL of the Stripe API (tests point it at a local server).
    #[arg(
        long,
        env = "STRIPE_API_BASE",
        default_value = "https://api.stripe.com",
        global = true
    )]
    pub stripe_api_base: String,

    /// ISO currency of every charge, lower case. Prices are integer cents, so it must be a
    /// currency with two decimals (not `jpy`, not `kwd`).
    #[arg(long, env = "STRIPE_CURRENCY", default_value = "usd", global = true)]
    pub stripe_currency: Currency,
}

/// Payments' migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Everything the service's flows need.
#[derive(Debug, Clone)]
pub struct Payments {
    pub pool: PgPool,
    /// Who charges cards.
    pub provider: Provider,
    /// The currency of every charge.
    pub currency: Currency,
    /// Verifies `Stripe-Signature` on webhooks; `None` refuses every webhook.
    pub webhook_secret: Option<Secret<String>>,
    /// How long one request holds a payment attempt while it calls the provider. Concurrent
    /// requests for the same order wait this long at most; after it, a request may take the
    /// attempt over (its holder is presumed dead) and call the provider again with the same
    /// idempotency key. Must exceed the provider's own timeout.
    pub attempt_lease: Duration,
}

impl Payments {
    /// The service over a migrated pool with the development provider, `usd`, no webhook
    /// secret, and a 30 s attempt lease.
    pub fn new(pool: PgPool) -> Self {
        Payments {
            pool,
            provider: Provider::Dev(DevProvider::new()),
            currency: Currency::default(),
            webhook_secret: None,
            attempt_lease: Duration::from_secs(30),
        }
    }
}

/// Runs the outbox schema and payments' migrations.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    outbox::install_schema(pool).await?;
    MIGRATOR
        .run(pool)
        .await
        .context("cannot migrate the payments database")
}

/// Connects (creating the database if needed), migrates, picks the provider and builds the
/// component.
pub async fn build(
    common: &CommonSettings,
    settings: &PaymentsSettings,
    bus: &Bus,
) -> anyhow::Result<Component> {
    let pool = db::open_service(common, settings.payments_database_url.as_ref(), NAME, 32).await?;
    migrate(&pool).await?;
    let provider = provider(settings)?;
    match &provider {
        Provider::Stripe(_) => tracing::info!(
            api_base = %settings.stripe_api_base,
            currency = %settings.stripe_currency,
            "payment provider: Stripe"
        ),
        Provider::Dev(_) => tracing::warn!(
            "payment provider: development (no STRIPE_SECRET_KEY; tok_visa succeeds, tok_chargeDeclined is declined, no money moves)"
        ),
    }
    if settings.stripe_webhook_secret.is_none() && matches!(provider, Provider::Stripe(_)) {
        tracing::warn!(
            "STRIPE_WEBHOOK_SECRET is not set: Stripe webhooks will be refused, and payments that complete asynchronously will not complete their orders"
        );
    }
    let payments = Payments {
        pool,
        provider,
        currency: settings.stripe_currency.clone(),
        webhook_secret: settings.stripe_webhook_secret.clone(),
        // Three provider timeouts: a live holder is never taken over, a dead one soon is.
        attempt_lease: provider::stripe::DEFAULT_TIMEOUT * 3,
    };
    Ok(component(payments, bus))
}

/// The provider the settings ask for: Stripe when `STRIPE_SECRET_KEY` is set, otherwise the
/// development provider.
pub fn provider(settings: &PaymentsSettings) -> anyhow::Result<Provider> {
    Ok(match &settings.stripe_secret_key {
        Some(key) => Provider::Stripe(StripeClient::new(key.clone(), &settings.stripe_api_base)?),
        None => Provider::Dev(DevProvider::new()),
    })
}

/// The component over a migrated pool: routes, outbox relay, order replica listeners.
pub fn component(payments: Payments, bus: &Bus) -> Component {
    let relay = outbox::Relay::new(payments.pool.clone(), bus.clone(), NAME);
    let (created, cancelled) = (payments.clone(), payments.clone());
    let (bus1, bus2) = (bus.clone(), bus.clone());
    Component {
        name: NAME,
        router: http::router(payments.clone()),
        tasks: vec![
            Task::new("payments-outbox-relay", move |stop| relay.run(stop)),
            Task::new("payments-order-created", move |stop| {
                listeners::order_created(created, bus1, stop)
            }),
            Task::new("payments-order-cancelled", move |stop| {
                listeners::order_cancelled(cancelled, bus2, stop)
            }),
        ],
        checks: vec![
            ReadyCheck::postgres("postgres:payments", payments.pool),
            ReadyCheck::nats(bus.clone()),
        ],
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        payments: PaymentsSettings,
    }

    fn parse(args: &[&str]) -> Result<PaymentsSettings, clap::Error> {
        Cli::try_parse_from(std::iter::once("ticketing").chain(args.iter().copied()))
            .map(|cli| cli.payments)
    }

    #[test]
    fn without_a_stripe_key_the_development_provider_is_used() {
        let settings = parse(&[]).unwrap();
        assert_eq!(settings.stripe_api_base, "https://api.stripe.com");
        assert_eq!(settings.stripe_currency.as_str(), "usd");
        assert!(matches!(provider(&settings).unwrap(), Provider::Dev(_)));
    }

    #[test]
    fn a_stripe_key_selects_stripe_at_the_configured_base_and_never_prints() {
        let settings = parse(&[
            "--stripe-secret-key",
            "sk_test_abc",
            "--stripe-api-base",
            "http://127.0.0.1:12111/",
            "--stripe-currency",
            "EUR",
        ])
        .unwrap();
        assert_eq!(settings.stripe_currency.as_str(), "eur");
        let shown = format!("{settings:?} {:?}", provider(&settings).unwrap());
        assert!(shown.contains("http://127.0.0.1:12111"), "{shown}");
        assert!(!shown.contains("sk_test_abc"), "{shown}");
        assert!(matches!(provider(&settings).unwrap(), Provider::Stripe(_)));
    }

    #[test]
    fn a_currency_without_cents_or_a_bad_base_is_refused() {
        assert!(parse(&["--stripe-currency", "jpy"]).is_err());
        let settings = parse(&[
            "--stripe-secret-key",
            "sk",
            "--stripe-api-base",
            "api.stripe.com",
        ])
        .unwrap();
        assert!(provider(&settings).is_err());
    }
}
