//! Wakes requests waiting for an order the replica has not learnt yet. The statement that
//! learns an order also `NOTIFY`s [`CHANNEL`] with its id, so every replica of payments on
//! the same database hears it, whichever of them applied `order.created`. One `LISTEN`
//! connection per process fans the ids out to the waiting requests.

use std::{sync::Arc, time::Duration};

use sqlx::{PgPool, postgres::PgListener};
use tokio::sync::{OnceCell, broadcast};
use tokio_util::sync::{CancellationToken, DropGuard};
use uuid::Uuid;

/// The notification channel; its payload is the order id.
pub const CHANNEL: &str = "payments_order_learnt";

/// How many arrivals a slow waiter may fall behind before it re-reads the replica instead.
const BACKLOG: usize = 1024;

/// The process's listener for learnt orders, started by the first request that waits.
/// Clones share it; it stops when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Arrivals {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: PgPool,
    sender: OnceCell<broadcast::Sender<Uuid>>,
    stop: CancellationToken,
    _stop_on_drop: DropGuard,
}

/// A subscription: the ids of orders learnt from the moment it was taken.
pub struct Arrived(broadcast::Receiver<Uuid>);

impl Arrived {
    /// Waits until `order_id` is learnt (`true`), or may have been (a missed notification:
    /// `true`, the caller reads again), or `timeout` passes (`false`).
    pub async fn wait_for(&mut self, order_id: Uuid, timeout: Duration) -> bool {
        let wait = async {
            loop {
                match self.0.recv().await {
                    Ok(id) if id == order_id => return true,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return true,
                    // The listener stopped (the service is shutting down): nothing will come.
                    Err(broadcast::error::RecvError::Closed) => return false,
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }
}

impl Arrivals {
    pub fn new(pool: PgPool) -> Self {
        let stop = CancellationToken::new();
        Arrivals {
            inner: Arc::new(Inner {
                pool,
                sender: OnceCell::new(),
                _stop_on_drop: stop.clone().drop_guard(),
                stop,
            }),
        }
    }

    /// Subscribes to learnt orders, listening first if this process is not yet. `Err` if the
    /// database cannot be listened to (the caller then only reads again at its deadline).
    pub async fn subscribe(&self) -> anyhow::Result<Arrived> {
        let sender = self
            .inner
            .sender
            .get_or_try_init(|| async {
                let mut listener = PgListener::connect_with(&self.inner.pool).await?;
                listener.listen(CHANNEL).await?;
                let (sender, _) = broadcast::channel(BACKLOG);
                tokio::spawn(relay(listener, sender.clone(), self.inner.stop.clone()));
                anyhow::Ok(sender)
            })
            .await?;
        Ok(Arrived(sender.subscribe()))
    }
}

/// Passes each notification on until `stop`. The listener reconnects by itself after a lost
/// connection (notifications sent meanwhile are missed: waiters then find the order when
/// they read again at their deadline).
async fn relay(mut listener: PgListener, sender: broadcast::Sender<Uuid>, stop: CancellationToken) {
    loop {
        let notification = tokio::select! {
            _ = stop.cancelled() => return,
            notification = listener.recv() => notification,
        };
        match notification {
            Ok(notification) => match notification.payload().parse() {
                // Nobody waiting is fine: the send only fails then.
                Ok(order_id) => _ = sender.send(order_id),
                Err(_) => tracing::warn!(
                    payload = notification.payload(),
                    "a notification on {CHANNEL} that is not an order id"
                ),
            },
            Err(error) => {
                tracing::warn!(%error, "listening for learnt orders failed; listening again");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
        }
    }
}
