//! The reconciler: what no request is left to finish. Every `reconcile_interval` it settles
//! pending refunds nobody holds, resolves payment attempts whose answer was lost and that no
//! buyer came back for (asking the provider first), and forgets declines older than the
//! card-testing window. Replicas may run it at once: every item is taken with a lease first.

use std::time::Duration;

use ticketing_common::CancellationToken;
use uuid::Uuid;

use super::{pay::charge_and_record, refund::settle};
use crate::{
    app::{DECLINE_WINDOW, Payments},
    store::{declines, payments, refunds},
};

/// Items of each kind looked at per round.
const BATCH: i64 = 50;

/// One round. Returns how many refunds and attempts it settled (counting those that are
/// still unknown at the provider).
#[tracing::instrument(skip_all)]
pub async fn reconcile_once(app: &Payments) -> anyhow::Result<usize> {
    let mut settled = 0;
    let pending = refunds::unsettled(&mut *app.pool.acquire().await?, BATCH).await?;
    for refund_id in pending {
        match settle(app, refund_id).await {
            Ok(Some(_)) => settled += 1,
            Ok(None) => {}
            Err(error) => tracing::warn!(%refund_id, %error, "refund not settled"),
        }
    }
    // An attempt is abandoned once a whole lease has passed without anyone touching it.
    let idle = app.attempt_lease.max(Duration::from_secs(1));
    let abandoned = payments::abandoned(&mut *app.pool.acquire().await?, idle, BATCH).await?;
    for payment in abandoned {
        let taken = payments::take_if_free(
            &mut *app.pool.acquire().await?,
            payment.id,
            Uuid::new_v4(),
            app.attempt_lease,
        )
        .await?;
        let Some(payment) = taken else { continue };
        tracing::info!(payment_id = %payment.id, attempt = payment.attempt, "resolving an attempt whose answer was lost");
        match charge_and_record(app, payment, true).await {
            Ok(_) => settled += 1,
            Err(error) => {
                tracing::info!(%error, "the attempt is settled as refused, or still unknown")
            }
        }
    }
    let pruned = declines::prune(&mut *app.pool.acquire().await?, DECLINE_WINDOW).await?;
    tracing::debug!(pruned, "old declines forgotten");
    Ok(settled)
}

/// Runs [`reconcile_once`] every `reconcile_interval` until `shutdown`. A failed round is
/// logged and tried again next time.
pub async fn run_reconciler(app: Payments, shutdown: CancellationToken) -> anyhow::Result<()> {
    let interval = app.reconcile_interval.max(Duration::from_millis(10));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(interval) => {}
        }
        if let Err(error) = reconcile_once(&app).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "reconciling payments failed; trying again next interval"
            );
        }
    }
}
