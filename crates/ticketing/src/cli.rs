//! The command line: `up`, `serve <component>`, the operators' `events` and `queue`, and every
//! setting as a flag with an environment fallback.

use std::{net::SocketAddr, sync::Arc};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use ticketing_auth::AuthSettings;
use ticketing_common::{
    Component,
    bus::Bus,
    component,
    forwarded::Proxies,
    http::ReadyCheck,
    session::{Operators, Revocations, SessionKeys},
    settings::CommonSettings,
    shutdown,
};
use ticketing_expiration::ExpirationSettings;
use ticketing_orders::OrdersSettings;
use ticketing_payments::PaymentsSettings;
use ticketing_tickets::TicketsSettings;
use tokio::net::TcpListener;

#[derive(Debug, Parser)]
#[command(
    name = "ticketing",
    version,
    about = "Ticketing: sell tickets, reserve them, pay within a window, never sell a seat twice."
)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonSettings,
    #[command(flatten)]
    pub auth: AuthSettings,
    #[command(flatten)]
    pub tickets: TicketsSettings,
    #[command(flatten)]
    pub orders: OrdersSettings,
    #[command(flatten)]
    pub expiration: ExpirationSettings,
    #[command(flatten)]
    pub payments: PaymentsSettings,
    /// Base URL of the public HTTP API that the web pages call with the visitor's cookie
    /// (the ingress, in separate deployment). `up` uses its own address.
    #[arg(long, env = "TICKETING_API_BASE", global = true)]
    pub api_base: Option<String>,
    /// Stripe's publishable key (public, not a secret), set when payments use Stripe: the
    /// order page then loads Stripe.js and its card element instead of the test cards.
    #[arg(long, env = "STRIPE_PUBLISHABLE_KEY", global = true)]
    pub stripe_publishable_key: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every component in one process on one port (API under /api).
    Up {
        /// Where to listen.
        #[arg(long, env = "TICKETING_ADDR", default_value = "127.0.0.1:8080")]
        addr: String,
    },
    /// Run one component on its own, for separate deployment.
    Serve {
        component: ComponentName,
        /// Where to listen.
        #[arg(long, env = "TICKETING_ADDR", default_value = "127.0.0.1:8080")]
        addr: String,
    },
    /// Events the services could not apply and parked: list them, replay them.
    Events {
        #[command(subcommand)]
        action: crate::events::Action,
    },
    /// The expiration queue, for operators: counts and lateness, jobs by state, and retry,
    /// promote or discard a job (recorded with the nil operator id: a shell has no session).
    Queue {
        #[command(subcommand)]
        action: crate::queue::Action,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ComponentName {
    Auth,
    Tickets,
    Orders,
    Expiration,
    Payments,
    Web,
}

impl ComponentName {
    const ALL: [ComponentName; 6] = [
        ComponentName::Auth,
        ComponentName::Tickets,
        ComponentName::Orders,
        ComponentName::Expiration,
        ComponentName::Payments,
        ComponentName::Web,
    ];

    fn needs_bus(self) -> bool {
        !matches!(self, ComponentName::Auth | ComponentName::Web)
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let (names, addr, all_in_one) = match &cli.command {
        Command::Up { addr } => (ComponentName::ALL.to_vec(), addr.clone(), true),
        Command::Serve { component, addr } => (vec![*component], addr.clone(), false),
        Command::Events { action } => return crate::events::run(&cli, action).await,
        Command::Queue { action } => return crate::queue::run(&cli, action).await,
    };
    let addr: SocketAddr = addr.parse().with_context(|| {
        format!("TICKETING_ADDR {addr:?} is not an address like 127.0.0.1:8080")
    })?;
    let (keys, https) = session_keys(&cli.common, all_in_one, addr)?;
    let listener = TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} (is another ticketing running? set TICKETING_ADDR)")
    })?;
    let local = listener.local_addr()?;
    let api_base = match (&cli.api_base, all_in_one) {
        (Some(base), _) => base.trim_end_matches('/').to_owned(),
        // `up` serves the API itself; pages reach it over loopback.
        (None, true) => {
            let host = if local.ip().is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                local.ip().to_string()
            };
            format!("http://{}", SocketAddr::new(host.parse()?, local.port()))
        }
        (None, false) if names.contains(&ComponentName::Web) => {
            bail!(
                "TICKETING_API_BASE is not set: `serve web` needs the URL of the public API (the ingress)"
            )
        }
        (None, false) => String::new(),
    };

    // Every component verifies sessions, so every process checks revocations in the queue
    // Redis (and fails open while it is unreachable).
    let revocations = Revocations::open(cli.common.queue_redis_url(), &cli.common.namespace)?;
    let keys = Arc::new(keys.with_revocations(Arc::new(revocations)));
    // The web pages name each visitor to the API with a token derived from the session key,
    // which the API believes whoever forwarded the call (the ingress, or this very process).
    let forwarding_token = keys.forwarding_token().clone();
    let proxies = Proxies::new(cli.common.trusted_proxies.clone());
    let api_proxies = proxies.clone().with_internal(forwarding_token.clone());

    let mut components: Vec<Component> = Vec::new();
    let mut shared_checks = Vec::new();
    let bus = if all_in_one || names.iter().any(|name| name.needs_bus()) {
        Some(
            Bus::connect_with_replicas(
                &cli.common.nats_url,
                &cli.common.namespace,
                cli.common.jetstream_replicas,
            )
            .await?,
        )
    } else {
        None
    };
    if all_in_one {
        // `up` promises the whole platform: check every dependency now, with one clear line
        // for the first that is missing, even if no component built so far needs it.
        let redis_url = cli.common.redis_url.expose().clone();
        let redis = ticketing_common::redis::connect(&redis_url).await?;
        shared_checks.push(ReadyCheck::new("redis", move || {
            let mut redis = redis.clone();
            async move { ticketing_common::redis::ping(&mut redis).await }
        }));
    }
    for name in &names {
        let component = match name {
            ComponentName::Auth => {
                ticketing_auth::build(&cli.common, &cli.auth, keys.clone(), api_proxies.clone())
                    .await?
            }
            ComponentName::Tickets => {
                let bus = bus.as_ref().expect("connected above");
                ticketing_tickets::build(&cli.common, &cli.tickets, bus).await?
            }
            ComponentName::Orders => {
                let bus = bus.as_ref().expect("connected above");
                ticketing_orders::build(&cli.common, &cli.orders, bus).await?
            }
            ComponentName::Payments => {
                let bus = bus.as_ref().expect("connected above");
                // A developer's `up` may take payments that move no money without saying so;
                // `serve payments` (every deployment) must be told which provider to use.
                let unconfigured = if all_in_one {
                    ticketing_payments::Unconfigured::UseDevelopment
                } else {
                    ticketing_payments::Unconfigured::Refuse
                };
                ticketing_payments::build(&cli.common, &cli.payments, bus, unconfigured).await?
            }
            ComponentName::Expiration => {
                let bus = bus.as_ref().expect("connected above");
                ticketing_expiration::build(&cli.common, &cli.expiration, bus).await?
            }
            ComponentName::Web => ticketing_web::component(ticketing_web::WebSettings {
                api_base: api_base.clone(),
                stripe_publishable_key: cli.stripe_publishable_key.clone(),
                forwarding: ticketing_web::Forwarding {
                    proxies: proxies.clone(),
                    token: Some(forwarding_token.clone()),
                    https,
                },
            }),
        };
        components.push(component);
    }
    if let Some(first) = components.first_mut() {
        first.checks.extend(shared_checks);
    }

    let shutdown = shutdown::on_signal();
    let app = component::compose(components, keys);
    if all_in_one {
        println!(
            "Ticketing is up at {api_base}/  (web UI there, API under /api, OpenAPI at /api/openapi.json; Ctrl-C to stop)"
        );
    } else {
        println!(
            "Ticketing {} is serving on http://{local}/",
            names[0]
                .to_possible_value()
                .map(|v| v.get_name().to_owned())
                .unwrap_or_default()
        );
    }
    tracing::info!(%local, namespace = %cli.common.namespace, "listening");
    component::serve_with(listener, app, shutdown, &cli.common.http).await?;
    tracing::info!("stopped");
    Ok(())
}

/// The session keys: from `JWT_KEY`, or for `up` only a throw-away key, lasting
/// `SESSION_TTL_SECONDS`; and whether the site is served over HTTPS. The cookie drops
/// `Secure` only when asked, or for `up` on a loopback address (plain-http development).
fn session_keys(
    common: &CommonSettings,
    all_in_one: bool,
    addr: SocketAddr,
) -> anyhow::Result<(SessionKeys, bool)> {
    let insecure = common.cookie_insecure || (all_in_one && addr.ip().is_loopback());
    if all_in_one && !common.cookie_insecure && insecure {
        println!(
            "Session cookies are sent without Secure because {addr} is a loopback address (plain-http development)."
        );
    }
    let keys = match &common.jwt_key {
        Some(key) => {
            SessionKeys::new(key.expose().as_bytes(), !insecure).map_err(anyhow::Error::msg)?
        }
        None if all_in_one => {
            println!(
                "JWT_KEY is not set: using a random session key for this run (sessions end when it stops)."
            );
            SessionKeys::random(!insecure)
        }
        None => bail!(
            "JWT_KEY is not set: `serve` needs the session key shared by every component (at least 32 bytes)"
        ),
    };
    let lifetime = time::Duration::seconds(i64::try_from(common.session_ttl_seconds)?);
    let operators = Operators::parse(common.admin_emails.as_deref());
    if operators.is_empty() {
        tracing::info!("ADMIN_EMAILS is not set: nobody may use the operators' routes");
    } else {
        tracing::info!(
            operators = operators.len(),
            "operators named by ADMIN_EMAILS"
        );
    }
    Ok((
        keys.with_lifetime(lifetime).with_operators(operators),
        !insecure,
    ))
}
