//! The expiration service: a durable delayed-job queue on Redis that fires
//! `expiration.complete` when an unpaid order's window ends, even if every process restarted
//! in between.
//!
//! - [`queue`]: the queue itself (enqueue, claim with lease and token, ack, retry, dead set),
//!   Lua scripts on Redis time;
//! - [`worker`]: claims due jobs, publishes, acks; sleeps until the next due job or a wake;
//! - [`listeners`] (here): `order.created` schedules the order's expiry.
//!
//! The queue's Redis (`REDIS_QUEUE_URL`) must persist (append-only file) and never evict
//! (`noeviction`); start-up refuses one that may evict.

pub mod queue;
pub mod worker;

use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;
use ticketing_common::{
    Component,
    bus::{
        Bus,
        listener::{self, Applied, Applying, Subscription},
    },
    component::{Events, Task},
    http::ReadyCheck,
    settings::CommonSettings,
};
use ticketing_events::{Envelope, ExpirationComplete, OrderCreated, Subject};
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::{
    queue::Queue,
    worker::{Fire, Worker, listen_for_wakes},
};

pub const NAME: &str = "expiration";

/// Settings only expiration reads.
#[derive(Debug, Clone, clap::Args)]
pub struct ExpirationSettings {
    /// How long a claimed job may stay unacknowledged before another worker takes it.
    #[arg(
        long,
        env = "EXPIRATION_LEASE_SECONDS",
        default_value_t = 30,
        global = true
    )]
    pub expiration_lease_seconds: u64,

    /// Workers per process.
    #[arg(long, env = "EXPIRATION_WORKERS", default_value_t = 1, global = true)]
    pub expiration_workers: usize,
}

/// Fires a job by publishing `expiration.complete` and waiting for JetStream's ack. The event
/// id and message id are derived from the order id, so a job fired twice (a lost lease) is
/// one message.
#[derive(Clone, Debug)]
pub struct PublishExpiration {
    pub bus: Bus,
}

/// The event id of an order's expiry: the same every time it fires.
pub fn expiration_event_id(order_id: Uuid) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("ticketing:expiration:{order_id}").as_bytes(),
    )
}

impl Fire for PublishExpiration {
    async fn fire(&self, order_id: Uuid) -> anyhow::Result<()> {
        let envelope = Envelope::with_id(
            expiration_event_id(order_id),
            ExpirationComplete { order_id },
        );
        let message = PublishMessage::build()
            .payload(serde_json::to_vec(&envelope)?.into())
            .message_id(envelope.id.to_string());
        let ack = self
            .bus
            .jetstream()
            .send_publish(self.bus.subject(Subject::ExpirationComplete), message)
            .await?;
        ack.await?;
        Ok(())
    }
}

/// Connects the queue (refusing an evicting Redis) and builds the component.
pub async fn build(
    common: &CommonSettings,
    settings: &ExpirationSettings,
    bus: &Bus,
) -> anyhow::Result<Component> {
    let url = common.queue_redis_url();
    let lease = Duration::from_secs(settings.expiration_lease_seconds.max(1));
    let queue = Queue::connect(url, common.namespace.redis_prefix(), lease).await?;
    Ok(component(queue, bus, settings.expiration_workers.max(1)))
}

/// Workers, their wake listener and the `order.created` listener.
pub fn component(queue: Queue, bus: &Bus, workers: usize) -> Component {
    let workers: Vec<Worker<PublishExpiration>> = (0..workers)
        .map(|_| Worker::new(queue.clone(), PublishExpiration { bus: bus.clone() }))
        .collect();
    let wakers = workers.iter().map(Worker::waker).collect();
    let mut tasks: Vec<Task> = workers
        .into_iter()
        .enumerate()
        .map(|(i, worker)| {
            Task::new(format!("expiration-worker-{i}"), move |stop| {
                worker.run(stop)
            })
        })
        .collect();
    let wake_queue = queue.clone();
    tasks.push(Task::new("expiration-wake", move |stop| {
        listen_for_wakes(wake_queue, wakers, stop)
    }));
    let events = Events {
        parking: queue.parking(),
        subscriptions: vec![Subscription::on(&queue, order_created)],
    };
    tasks.extend(listener::tasks(
        bus,
        NAME,
        &events.parking,
        &events.subscriptions,
    ));
    let check_queue = queue.clone();
    Component {
        name: NAME,
        router: OpenApiRouter::new(),
        tasks,
        checks: vec![
            ReadyCheck::new("redis:queue", move || {
                let queue = check_queue.clone();
                async move { queue.stats().await.map(drop) }
            }),
            ReadyCheck::nats(bus.clone()),
        ],
        events: Some(events),
    }
}

/// `order.created` → schedule the order's expiry at its `expiresAt`. A redelivered event
/// finds the job (or its tombstone) and adds nothing.
async fn order_created(queue: Queue, event: Envelope<OrderCreated>) -> Applying {
    let due_ms = (event.data.expires_at.unix_timestamp_nanos() / 1_000_000) as i64;
    let added = queue.enqueue(event.data.id, due_ms).await?;
    tracing::info!(order_id = %event.data.id, added, "expiry scheduled");
    Ok(if added {
        Applied::Now
    } else {
        Applied::Already
    })
}
