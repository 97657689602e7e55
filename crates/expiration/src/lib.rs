//! The expiration service: a durable delayed-job queue on Redis that fires
//! `expiration.complete` when an unpaid order's window ends, even if every process restarted
//! in between.
//!
//! - [`queue`]: the queue itself (enqueue, claim with lease and token, ack, retry, dead set),
//!   Lua scripts on Redis time;
//! - [`worker`]: claims due jobs, publishes, acks; sleeps until the next due job or a wake;
//! - [`publish`]: firing a job publishes `expiration.complete` (the bus's one publish path);
//! - [`listeners`]: `order.created` schedules the order's expiry;
//! - [`board`]: what operators see of the queue (counts, jobs, [`lateness`]) and do to its
//!   jobs (retry, promote, discard), served by [`http`] under `/api/queues` and by
//!   `ticketing queue`.
//! - [`app`] holds the service's name (its state is the [`queue::Queue`]); [`settings`] what it
//!   reads from flags and the environment. This file only composes the component.
//!
//! The queue's Redis (`REDIS_QUEUE_URL`) must persist (append-only file) and never evict
//! (`noeviction`); start-up refuses one that may evict.

pub mod app;
pub mod board;
pub mod http;
pub mod lateness;
pub mod listeners;
pub mod publish;
pub mod queue;
pub mod settings;
pub mod worker;

use std::time::Duration;

use ticketing_common::{
    Component,
    bus::Bus,
    component::{Events, Task},
    http::ReadyCheck,
    settings::CommonSettings,
};

use crate::{
    queue::Queue,
    worker::{Worker, listen_for_wakes},
};

pub use app::NAME;
pub use publish::{PublishExpiration, expiration_event_id};
pub use settings::ExpirationSettings;

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

/// Workers, their wake listener, the `order.created` listener, and the operators' routes
/// under `/api/queues`.
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
        subscriptions: listeners::subscriptions(&queue),
    };
    tasks.extend(events.tasks(bus, NAME));
    let check_queue = queue.clone();
    Component {
        name: NAME,
        router: http::router(queue.clone()),
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
    .with_operations("/api/queues", Some(bus), None, queue.action_log())
}
