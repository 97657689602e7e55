//! `ticketing events parked` and `ticketing events replay`: what the services parked (events
//! they could not apply), and applying them again through the same handlers once the cause
//! is fixed. Each service's parked events live with it (its database; expiration's queue
//! Redis). Listing opens only those, as they are: nothing is created or migrated, and a
//! namespace where nothing ran is an error, not "no parked events". A replay also builds
//! the services' handlers, connecting to everything a service needs, like `up`, but serves
//! nothing.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;
use ticketing_common::{
    bus::{
        Bus,
        parked::{self, ParkedEvent, Parking, Replayed},
    },
    component::Events,
    db,
};
use ticketing_expiration::queue::Queue;
use uuid::Uuid;

use crate::cli::Cli;

#[derive(Debug, Subcommand)]
pub enum Action {
    /// List the parked events of every service, oldest first.
    Parked,
    /// Apply parked events again through the handler that parked them; an event that
    /// applies is forgotten, one that is refused again stays with its new error.
    Replay {
        /// The parked event's id (from `events parked`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<Uuid>,
        /// Every parked event, oldest first.
        #[arg(long)]
        all: bool,
    },
}

/// Where every service that reads events parks them, opened without changing anything.
async fn parkings(cli: &Cli) -> anyhow::Result<Vec<(&'static str, Parking)>> {
    let databases = [
        (
            ticketing_tickets::NAME,
            cli.tickets.tickets_database_url.as_ref(),
        ),
        (
            ticketing_orders::NAME,
            cli.orders.orders_database_url.as_ref(),
        ),
        (
            ticketing_payments::NAME,
            cli.payments.payments_database_url.as_ref(),
        ),
    ];
    let mut parkings = Vec::new();
    for (name, explicit) in databases {
        let pool = db::open_existing_service(&cli.common, explicit, name)
            .await
            .with_context(|| {
                format!(
                    "cannot read {name}'s parked events: has anything run in namespace {} (TICKETING_NAMESPACE, DATABASE_URL)?",
                    cli.common.namespace
                )
            })?;
        parkings.push((name, Parking::Postgres(pool)));
    }
    // The lease is never used: nothing is claimed.
    let queue = Queue::connect(
        cli.common.queue_redis_url(),
        cli.common.namespace.redis_prefix(),
        Duration::from_secs(30),
    )
    .await?;
    parkings.push((ticketing_expiration::NAME, queue.parking()));
    Ok(parkings)
}

/// The event handling of every service that reads events (for a replay).
async fn services(cli: &Cli) -> anyhow::Result<Vec<(&'static str, Events)>> {
    let bus = Bus::connect_with_replicas(
        &cli.common.nats_url,
        &cli.common.namespace,
        cli.common.jetstream_replicas,
    )
    .await?;
    let components = [
        ticketing_tickets::build(&cli.common, &cli.tickets, &bus).await?,
        ticketing_orders::build(&cli.common, &cli.orders, &bus).await?,
        // Replays only touch its order replica: no charge is made, whatever the provider.
        ticketing_payments::build(
            &cli.common,
            &cli.payments,
            &bus,
            ticketing_payments::Unconfigured::UseDevelopment,
        )
        .await?,
        ticketing_expiration::build(&cli.common, &cli.expiration, &bus).await?,
    ];
    Ok(components
        .into_iter()
        .filter_map(|component| Some((component.name, component.events?)))
        .collect())
}

fn describe(event: &ParkedEvent) -> String {
    let error: String = event.error.chars().take(160).collect();
    format!(
        "{}  {:<10} {:<20} event {}  parked {}  replays {}  {error}",
        event.id,
        event.service,
        event.subject,
        event
            .event_id
            .map_or_else(|| "(unreadable)".to_owned(), |id| id.to_string()),
        event
            .parked_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        event.replays,
    )
}

pub async fn run(cli: &Cli, action: &Action) -> anyhow::Result<()> {
    println!(
        "Reading the parked events of tickets, orders, payments and expiration (namespace {})...",
        cli.common.namespace
    );
    let mut parked = Vec::new();
    for (name, parking) in parkings(cli).await? {
        for event in parking.list().await? {
            parked.push((name, event));
        }
    }
    parked.sort_by_key(|(_, event)| (event.parked_at, event.id));
    match action {
        Action::Parked => {
            if parked.is_empty() {
                println!("No parked events.");
            }
            for (_, event) in &parked {
                println!("{}", describe(event));
            }
            Ok(())
        }
        Action::Replay { id, all } => {
            let chosen: Vec<_> = parked
                .iter()
                .filter(|(_, event)| *all || Some(event.id) == *id)
                .collect();
            if chosen.is_empty() {
                if *all {
                    println!("No parked events.");
                    return Ok(());
                }
                bail!(
                    "no parked event {} (ticketing events parked lists them)",
                    id.unwrap_or_default()
                );
            }
            let services = services(cli).await?;
            let mut refused = 0;
            for (name, event) in chosen {
                let events = &services
                    .iter()
                    .find(|(service, _)| service == name)
                    .expect("listed from these services")
                    .1;
                match parked::replay(&events.parking, &events.subscriptions, event).await? {
                    Replayed::Applied => {
                        println!("applied   {} ({name} {})", event.id, event.subject)
                    }
                    Replayed::Refused(error) => {
                        refused += 1;
                        println!("refused   {} ({name} {}): {error}", event.id, event.subject);
                    }
                    Replayed::NoHandler => {
                        refused += 1;
                        println!("no handler {} ({name} {}): kept", event.id, event.subject);
                    }
                }
            }
            if refused > 0 {
                bail!("{refused} parked event(s) could not be applied and stay parked");
            }
            Ok(())
        }
    }
}
