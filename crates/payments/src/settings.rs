//! The settings only payments reads, and the provider they choose (failing closed).

use ticketing_common::Secret;

use crate::{
    domain::Currency,
    provider::{DevProvider, Provider, StripeClient},
};

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

    /// Who charges cards: `stripe` (needs STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET) or
    /// `development` (`tok_visa` succeeds, `tok_chargeDeclined` is declined, no money
    /// moves). Unset: Stripe when STRIPE_SECRET_KEY is set; otherwise `up` uses development
    /// and `serve payments` refuses to start.
    #[arg(long, env = "PAYMENTS_PROVIDER", value_enum, global = true)]
    pub payments_provider: Option<ProviderKind>,

    /// Stripe secret API key (`sk_...` or a restricted `rk_...`).
    #[arg(long, env = "STRIPE_SECRET_KEY", hide_env_values = true, global = true)]
    pub stripe_secret_key: Option<Secret<String>>,

    /// The signing secret of the Stripe webhook endpoint (`whsec_...`); required with Stripe.
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

/// The payment providers `PAYMENTS_PROVIDER` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderKind {
    /// Stripe: real money (or Stripe's test mode).
    Stripe,
    /// The development provider: no money moves.
    Development,
}

/// Whether the development provider may be chosen without being named (`ticketing up` on a
/// developer's machine), or must be asked for (`serve payments`, every deployment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unconfigured {
    UseDevelopment,
    Refuse,
}

/// The provider the settings ask for, and the webhook secret that goes with it (none for the
/// development provider: there is no Stripe to send webhooks). Fails closed:
/// - Stripe (named, or implied by `STRIPE_SECRET_KEY`) needs a `sk_`/`rk_` key and a
///   `whsec_` webhook secret;
/// - `development` with a Stripe key set is a contradiction, refused;
/// - nothing configured is the development provider only for `up`; elsewhere it is refused.
///
/// Empty variables count as unset (see `ticketing_common::settings::parse`).
pub fn choose_provider(
    settings: &PaymentsSettings,
    unconfigured: Unconfigured,
) -> anyhow::Result<(Provider, Option<Secret<String>>)> {
    let key = settings.stripe_secret_key.as_ref();
    match (settings.payments_provider, key) {
        (Some(ProviderKind::Development), Some(_)) => anyhow::bail!(
            "PAYMENTS_PROVIDER is development but STRIPE_SECRET_KEY is set: unset STRIPE_SECRET_KEY, or set PAYMENTS_PROVIDER=stripe"
        ),
        (Some(ProviderKind::Development), None) => Ok((Provider::Dev(DevProvider::new()), None)),
        (Some(ProviderKind::Stripe), None) => anyhow::bail!(
            "PAYMENTS_PROVIDER is stripe but STRIPE_SECRET_KEY is not set: set it to the account's secret key (sk_live_... or sk_test_...)"
        ),
        (Some(ProviderKind::Stripe) | None, Some(key)) => {
            let valid_key = ["sk_test_", "sk_live_", "rk_test_", "rk_live_"]
                .iter()
                .any(|prefix| {
                    key.expose().starts_with(prefix) && key.expose().len() > prefix.len()
                });
            anyhow::ensure!(
                valid_key,
                "STRIPE_SECRET_KEY is not a Stripe secret key: it must start with sk_live_, sk_test_, rk_live_ or rk_test_"
            );
            let secret = settings.stripe_webhook_secret.as_ref();
            let valid_secret = secret.is_some_and(|secret| {
                let secret = secret.expose();
                secret.starts_with("whsec_") && secret.len() > "whsec_".len()
            });
            anyhow::ensure!(
                valid_secret,
                "STRIPE_WEBHOOK_SECRET must be the webhook endpoint's signing secret (whsec_...): it is {}",
                if secret.is_none() {
                    "not set"
                } else {
                    "not a signing secret"
                }
            );
            Ok((
                Provider::Stripe(StripeClient::new(key.clone(), &settings.stripe_api_base)?),
                secret.cloned(),
            ))
        }
        (None, None) => match unconfigured {
            Unconfigured::UseDevelopment => Ok((Provider::Dev(DevProvider::new()), None)),
            Unconfigured::Refuse => anyhow::bail!(
                "PAYMENTS_PROVIDER is not set and STRIPE_SECRET_KEY is not either: set PAYMENTS_PROVIDER=stripe (with STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET) to take payments, or PAYMENTS_PROVIDER=development for payments that move no money"
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::provider::PaymentProvider as _;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        payments: PaymentsSettings,
    }

    fn parse(args: &[&str]) -> Result<PaymentsSettings, clap::Error> {
        Cli::try_parse_from(std::iter::once("ticketing").chain(args.iter().copied()))
            .map(|cli| cli.payments)
    }

    const KEY: &str = "sk_test_abc";
    const WHSEC: &str = "whsec_abc";

    #[test]
    fn without_any_provider_setting_only_up_uses_the_development_provider() {
        let settings = parse(&[]).unwrap();
        assert_eq!(settings.stripe_api_base, "https://api.stripe.com");
        assert_eq!(settings.stripe_currency.as_str(), "usd");
        let (provider, secret) = choose_provider(&settings, Unconfigured::UseDevelopment).unwrap();
        assert!(matches!(provider, Provider::Dev(_)));
        assert!(secret.is_none(), "no webhooks without Stripe");
        let refused = provider_error(&settings, Unconfigured::Refuse);
        assert!(refused.contains("PAYMENTS_PROVIDER"), "{refused}");
    }

    fn provider_error(settings: &PaymentsSettings, unconfigured: Unconfigured) -> String {
        match choose_provider(settings, unconfigured) {
            Ok((provider, _)) => panic!("accepted: {provider:?}"),
            Err(error) => format!("{error:#}"),
        }
    }

    #[test]
    fn the_development_provider_must_be_named_and_cannot_sit_beside_a_stripe_key() {
        let settings = parse(&["--payments-provider", "development"]).unwrap();
        assert!(matches!(
            choose_provider(&settings, Unconfigured::Refuse).unwrap().0,
            Provider::Dev(_)
        ));
        let both = parse(&[
            "--payments-provider",
            "development",
            "--stripe-secret-key",
            KEY,
        ])
        .unwrap();
        assert!(provider_error(&both, Unconfigured::UseDevelopment).contains("STRIPE_SECRET_KEY"));
        let stripe_without_key = parse(&["--payments-provider", "stripe"]).unwrap();
        assert!(
            provider_error(&stripe_without_key, Unconfigured::UseDevelopment)
                .contains("STRIPE_SECRET_KEY")
        );
    }

    #[test]
    fn stripe_needs_a_real_webhook_signing_secret() {
        for args in [
            vec!["--stripe-secret-key", KEY],
            vec!["--stripe-secret-key", KEY, "--stripe-webhook-secret", ""],
            vec![
                "--stripe-secret-key",
                KEY,
                "--stripe-webhook-secret",
                "whsec_",
            ],
            vec![
                "--stripe-secret-key",
                KEY,
                "--stripe-webhook-secret",
                "secret",
            ],
            vec![
                "--payments-provider",
                "stripe",
                "--stripe-secret-key",
                KEY,
                "--stripe-webhook-secret",
                "we_123",
            ],
        ] {
            // An empty flag is refused while parsing, naming the variable;
            // every other shape is refused when the provider is chosen.
            let error = match parse(&args) {
                Ok(settings) => provider_error(&settings, Unconfigured::UseDevelopment),
                Err(refused) => refused.to_string(),
            };
            assert!(error.contains("STRIPE_WEBHOOK_SECRET"), "{args:?}: {error}");
        }
    }

    #[test]
    fn a_key_that_is_not_a_stripe_secret_key_is_refused() {
        for key in ["pk_test_abc", "sk_test_", "abc", "whsec_abc"] {
            let settings =
                parse(&["--stripe-secret-key", key, "--stripe-webhook-secret", WHSEC]).unwrap();
            let error = provider_error(&settings, Unconfigured::UseDevelopment);
            assert!(error.starts_with("STRIPE_SECRET_KEY"), "{key}: {error}");
        }
    }

    #[test]
    fn a_stripe_key_selects_stripe_at_the_configured_base_and_never_prints() {
        let settings = parse(&[
            "--stripe-secret-key",
            KEY,
            "--stripe-webhook-secret",
            WHSEC,
            "--stripe-api-base",
            "http://127.0.0.1:12111/",
            "--stripe-currency",
            "EUR",
        ])
        .unwrap();
        assert_eq!(settings.stripe_currency.as_str(), "eur");
        let (chosen, secret) = choose_provider(&settings, Unconfigured::Refuse).unwrap();
        let shown = format!("{settings:?} {chosen:?}");
        assert!(shown.contains("http://127.0.0.1:12111"), "{shown}");
        assert!(
            !shown.contains("sk_test_abc") && !shown.contains(WHSEC),
            "{shown}"
        );
        assert!(matches!(chosen, Provider::Stripe(_)));
        assert!(!chosen.livemode(), "a test key is not live");
        assert_eq!(secret.unwrap().expose(), WHSEC);
        let live = parse(&[
            "--stripe-secret-key",
            "sk_live_x",
            "--stripe-webhook-secret",
            WHSEC,
        ])
        .unwrap();
        assert!(
            choose_provider(&live, Unconfigured::Refuse)
                .unwrap()
                .0
                .livemode()
        );
    }

    #[test]
    fn a_currency_without_cents_or_a_bad_base_is_refused() {
        assert!(parse(&["--stripe-currency", "jpy"]).is_err());
        let settings = parse(&[
            "--stripe-secret-key",
            KEY,
            "--stripe-webhook-secret",
            WHSEC,
            "--stripe-api-base",
            "api.stripe.com",
        ])
        .unwrap();
        assert!(choose_provider(&settings, Unconfigured::Refuse).is_err());
    }
}
