//! The worker: claims due jobs, fires each (publishes `expiration.complete` and waits for
//! JetStream's ack) inside the trace and request that scheduled it, and only then acks the
//! job. It sleeps until the next job is due, or
//! until an earlier job is enqueued (a message on the wake channel), never polling on a fixed
//! slow beat; while Redis is away it retries within a second, so overdue jobs fire within a
//! couple of seconds of Redis coming back.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures::{StreamExt, future::join_all};
use ticketing_common::{CancellationToken, telemetry};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::queue::{Job, Queue, Retried};

/// The longest a worker sleeps without looking at the queue (a safety net for a wake
/// message lost while the subscription was down).
const MAX_IDLE: Duration = Duration::from_secs(1);

/// What firing a job means. Production publishes `expiration.complete`; tests may fail.
pub trait Fire: Send + Sync + 'static {
    fn fire(&self, order_id: Uuid) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// A worker of the queue.
pub struct Worker<F> {
    queue: Queue,
    fire: Arc<F>,
    name: String,
    batch: usize,
    wake: Arc<Notify>,
}

impl<F: Fire> Worker<F> {
    pub fn new(queue: Queue, fire: F) -> Self {
        let name = format!("worker-{}", &Uuid::new_v4().simple().to_string()[..12]);
        Worker {
            queue,
            fire: Arc::new(fire),
            name,
            batch: 256,
            wake: Arc::new(Notify::new()),
        }
    }

    /// The notifier that wakes this worker early; [`listen_for_wakes`] rings it.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Claims and fires due jobs once; returns how long until it should look again.
    pub async fn work_once(&self) -> anyhow::Result<Option<Duration>> {
        let claim = self.queue.claim(&self.name, self.batch).await?;
        metrics::gauge!("expiration_jobs_pending").set(claim.stats.pending as f64);
        metrics::gauge!("expiration_jobs_leased").set(claim.stats.leased as f64);
        metrics::gauge!("expiration_jobs_dead").set(claim.stats.dead as f64);
        let full = claim.jobs.len() == self.batch;
        join_all(claim.jobs.into_iter().map(|job| self.process(job))).await;
        Ok(if full {
            Some(Duration::ZERO)
        } else {
            claim.next_in
        })
    }

    /// Fires a job and settles it, inside the trace and request that scheduled it.
    async fn process(&self, job: Job) {
        let span = tracing::info_span!(
            "fire_expiration",
            order_id = %job.order_id,
            request_id = tracing::field::Empty,
        );
        let headers = job.headers.clone();
        telemetry::continuing(span, &headers, self.fire_and_settle(job)).await;
    }

    async fn fire_and_settle(&self, job: Job) {
        match self.fire.fire(job.order_id).await {
            Ok(()) => {
                let lateness = now_ms() - job.due_ms;
                metrics::histogram!("expiration_lateness_seconds")
                    .record(lateness.max(0) as f64 / 1000.0);
                metrics::counter!("expiration_jobs_fired_total").increment(1);
                match self.queue.ack(&job).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(order_id = %job.order_id, "lease lost before ack; another worker fires it again (deduplicated)")
                    }
                    Err(error) => {
                        tracing::warn!(order_id = %job.order_id, %error, "cannot ack job; its lease will run out and it fires again (deduplicated)")
                    }
                }
            }
            Err(error) => {
                metrics::counter!("expiration_jobs_retried_total").increment(1);
                match self.queue.retry(&job, &format!("{error:#}")).await {
                    Ok(Retried::Dead) => {
                        metrics::counter!("expiration_jobs_dead_total").increment(1);
                        tracing::error!(order_id = %job.order_id, error = format!("{error:#}"), "expiration job failed too often; moved to the dead set");
                    }
                    Ok(_) => {
                        tracing::warn!(order_id = %job.order_id, error = format!("{error:#}"), "expiration job failed; will retry")
                    }
                    Err(retry_error) => {
                        tracing::warn!(order_id = %job.order_id, %retry_error, "cannot reschedule job; its lease will run out")
                    }
                }
            }
        }
    }

    /// Works until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut failing = false;
        let mut backoff = Duration::from_millis(50);
        while !shutdown.is_cancelled() {
            let sleep = match self.work_once().await {
                Ok(next) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!("expiration queue reachable again");
                    }
                    backoff = Duration::from_millis(50);
                    next.unwrap_or(MAX_IDLE).min(MAX_IDLE)
                }
                Err(error) => {
                    if !failing {
                        tracing::warn!(
                            error = format!("{error:#}"),
                            "expiration queue unavailable; retrying"
                        );
                        failing = true;
                    }
                    backoff = (backoff * 2).min(MAX_IDLE);
                    backoff
                }
            };
            if sleep.is_zero() {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(sleep) => {}
                _ = self.wake.notified() => {}
            }
        }
        Ok(())
    }
}

/// Rings `wakers` whenever a job earlier than everything queued is enqueued. Reconnects by
/// itself; while disconnected, workers still look at least every second.
pub async fn listen_for_wakes(
    queue: Queue,
    wakers: Vec<Arc<Notify>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    while !shutdown.is_cancelled() {
        let subscribed = async {
            let mut pubsub = queue.pubsub().await?;
            pubsub.subscribe(queue.wake_channel()).await?;
            redis::RedisResult::Ok(pubsub.into_on_message())
        };
        match tokio::time::timeout(Duration::from_secs(2), subscribed).await {
            Ok(Ok(mut messages)) => loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    message = messages.next() => match message {
                        Some(_) => wakers.iter().for_each(|w| w.notify_one()),
                        None => break,
                    },
                }
            },
            _ => {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
    }
    Ok(())
}

/// Wall-clock ms since the epoch, for lateness only (scheduling uses Redis time).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
