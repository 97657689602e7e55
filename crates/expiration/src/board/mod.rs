//! The queue board: what operators see of the queue and do to its jobs. The HTTP API
//! (`/api/queues...`, [`crate::http`]) and the command line (`ticketing queue ...`) both call
//! these, so a shell and the console always agree.
//!
//! - counts by state ([`Queue::counts`]), the jobs of one state ([`Queue::jobs`]);
//! - lateness over the last minutes and a point a minute for the chart, read from the
//!   per-minute counts every replica's acks write ([`crate::lateness`]);
//! - [`act`]: retry a failed job, promote a delayed one, discard a failed one. Each is one Lua
//!   script that checks the job's state and moves it in the same step, so two operators
//!   clicking at once (or an operator and a worker) cannot both win; a job made due now wakes
//!   the workers. The action is then recorded in the queue's action log.
//!
//! A job's id is its order's id.

mod input;
mod scripts;

use std::collections::HashMap;

use anyhow::Context;
use redis::Script;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    lateness::{Histogram, SUMMARY_MINUTES},
    queue::{DONE_TTL_MS, Queue, int, text},
    worker::now_ms,
};

pub use input::{ChartMinutes, JobState, Limit, Offset};

/// The name of the one queue, as the API lists it.
pub const QUEUE_NAME: &str = "expiration";

/// Jobs by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub delayed: u64,
    pub active: u64,
    pub failed: u64,
    /// Fired since the queue was made (counted in Redis by every replica's acks).
    pub completed: u64,
}

/// One job as the board lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    /// The job's id, which is its order's id.
    pub order_id: Uuid,
    /// When it is due (delayed), or was due when claimed (active) or at its last try
    /// (failed); `None` for a job claimed or failed before the queue kept it.
    pub due_at: Option<OffsetDateTime>,
    /// Failed attempts so far (reset by an operator's retry).
    pub attempts: u32,
    /// Why its last attempt failed, if one did.
    pub last_error: Option<String>,
    /// When its last attempt failed (for a failed job: when it gave up).
    pub failed_at: Option<OffsetDateTime>,
}

/// Lateness percentiles; `None`s when no job fired.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatenessSummary {
    pub p50_ms: Option<u64>,
    pub p99_ms: Option<u64>,
    pub max_ms: Option<u64>,
    pub count: u64,
}

impl From<&Histogram> for LatenessSummary {
    fn from(histogram: &Histogram) -> Self {
        LatenessSummary {
            p50_ms: histogram.quantile(0.5),
            p99_ms: histogram.quantile(0.99),
            max_ms: histogram.max(),
            count: histogram.count(),
        }
    }
}

/// One minute of the lateness chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatenessPoint {
    /// The start of the minute.
    pub at: OffsetDateTime,
    pub lateness: LatenessSummary,
}

/// What an operator does to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobAction {
    /// A failed job is scheduled again, due now.
    Retry,
    /// A delayed job fires now.
    Promote,
    /// A failed job is dropped for good.
    Discard,
}

impl JobAction {
    /// Its name in the action log.
    pub fn name(self) -> &'static str {
        match self {
            JobAction::Retry => "retry",
            JobAction::Promote => "promote",
            JobAction::Discard => "discard",
        }
    }

    fn script(self) -> &'static Script {
        match self {
            JobAction::Retry => &scripts::RETRY_FAILED,
            JobAction::Promote => &scripts::PROMOTE,
            JobAction::Discard => &scripts::DISCARD,
        }
    }

    fn refusal(self, state: &str) -> String {
        let (needed, done) = match self {
            JobAction::Retry => ("failed", "retried"),
            JobAction::Promote => ("delayed", "promoted"),
            JobAction::Discard => ("failed", "discarded"),
        };
        let now = match state {
            "delayed" => "is delayed (waiting for its due time)",
            "active" => "is active (a worker is firing it)",
            "failed" => "has failed",
            "completed" => "already fired",
            "discarded" => "was discarded",
            _ => "is in no state the queue knows",
        };
        format!("Only a {needed} job can be {done}: this job {now}")
    }
}

/// What an action did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acted {
    pub order_id: Uuid,
    /// When the job is now due (retry, promote); `None` once discarded.
    pub due_at: Option<OffsetDateTime>,
}

/// Why an action was refused.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("Job not found")]
    NotFound,
    /// The job is in another state; the message says which and what the action needs.
    #[error("{0}")]
    WrongState(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Does `action` to job `id` for `operator` (id, e-mail) and records it in the queue's action
/// log. The command line, which has no session, acts as the nil operator id.
///
/// The record is written once the action is done, so the log never shows an action that was
/// refused; if writing it fails, the action stands and the failure is logged with who did
/// what.
pub async fn act(
    queue: &Queue,
    (operator, email): (Uuid, &str),
    action: JobAction,
    id: Uuid,
) -> Result<Acted, ActionError> {
    let acted = queue.act(action, id).await?;
    if let Err(error) = queue
        .action_log()
        .record((operator, email), action.name(), &id.to_string())
        .await
    {
        tracing::error!(%operator, action = action.name(), job = %id, error = format!("{error:#}"), "the action was done but could not be recorded");
    }
    Ok(acted)
}

fn datetime(ms: i64) -> anyhow::Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .with_context(|| format!("{ms} is not a time"))
}

/// A time in ms as the list script returns it ('' for none).
fn optional_datetime(raw: &str) -> anyhow::Result<Option<OffsetDateTime>> {
    if raw.is_empty() {
        return Ok(None);
    }
    let ms: f64 = raw
        .parse()
        .with_context(|| format!("{raw:?} is not a time"))?;
    datetime(ms as i64).map(Some)
}

impl Queue {
    /// Jobs by state, read in one round trip.
    #[tracing::instrument(skip_all)]
    pub async fn counts(&self) -> anyhow::Result<Counts> {
        let (delayed, active, failed, completed): (u64, u64, u64, Option<u64>) = redis::pipe()
            .zcard(self.key("due"))
            .zcard(self.key("leased"))
            .zcard(self.key("dead"))
            .get(self.key("completed"))
            .query_async(&mut self.redis())
            .await
            .context("cannot count the queue's jobs")?;
        Ok(Counts {
            delayed,
            active,
            failed,
            completed: completed.unwrap_or(0),
        })
    }

    /// The jobs in `state`, earliest first: by due time (delayed), lease deadline (active)
    /// or the time they gave up (failed).
    #[tracing::instrument(skip_all, fields(state = %state))]
    pub async fn jobs(
        &self,
        state: JobState,
        limit: Limit,
        offset: Offset,
    ) -> anyhow::Result<Vec<JobInfo>> {
        let raw: Vec<redis::Value> = scripts::LIST
            .key(self.key(state.set()))
            .key(self.key("attempts"))
            .key(self.key("errors"))
            .key(self.key("failed_at"))
            .key(self.key("due_at"))
            .key(self.key("dead_reasons"))
            .arg(offset.get())
            .arg(limit.get())
            .arg(state.as_str())
            .invoke_async(&mut self.redis())
            .await
            .context("cannot list the queue's jobs")?;
        raw.chunks(5)
            .map(|row| {
                anyhow::ensure!(row.len() == 5, "malformed job listing");
                let error = text(&row[3])?;
                Ok(JobInfo {
                    order_id: text(&row[0])?.parse()?,
                    due_at: optional_datetime(&text(&row[1])?)?,
                    attempts: text(&row[2])?.parse().unwrap_or(0),
                    last_error: (!error.is_empty()).then_some(error),
                    failed_at: optional_datetime(&text(&row[4])?)?,
                })
            })
            .collect()
    }

    /// Does `action` to job `id` (see [`act`], which also records it).
    async fn act(&self, action: JobAction, id: Uuid) -> Result<Acted, ActionError> {
        let raw: Vec<redis::Value> = action
            .script()
            .key(self.key("due"))
            .key(self.key("leased"))
            .key(self.key("dead"))
            .key(self.done_key(id))
            .key(self.key("jobs"))
            .key(self.key("attempts"))
            .key(self.key("errors"))
            .key(self.key("failed_at"))
            .key(self.key("due_at"))
            .key(self.key("dead_reasons"))
            .key(self.key("tokens"))
            .arg(id.to_string())
            .arg(self.wake_channel())
            .arg(DONE_TTL_MS)
            .invoke_async(&mut self.redis())
            .await
            .with_context(|| format!("cannot {} job {id}", action.name()))?;
        let [done, detail] = raw.as_slice() else {
            return Err(anyhow::anyhow!("malformed reply to {}", action.name()).into());
        };
        match int(done)? {
            1 => Ok(Acted {
                order_id: id,
                due_at: match action {
                    JobAction::Discard => None,
                    _ => Some(datetime(int(detail)?)?),
                },
            }),
            _ => match text(detail)?.as_str() {
                "unknown" => Err(ActionError::NotFound),
                state => Err(ActionError::WrongState(action.refusal(state))),
            },
        }
    }

    /// Each minute's lateness counts, from `minutes - 1` minutes ago to the current minute
    /// (this process's clock), oldest first.
    async fn lateness_minutes(&self, minutes: u32) -> anyhow::Result<Vec<(i64, Histogram)>> {
        let current = now_ms().div_euclid(60_000);
        let range: Vec<i64> = (current - i64::from(minutes) + 1..=current).collect();
        let mut pipe = redis::pipe();
        for minute in &range {
            pipe.hgetall(self.lateness_key(*minute));
        }
        let hashes: Vec<HashMap<String, String>> = pipe
            .query_async(&mut self.redis())
            .await
            .context("cannot read the queue's lateness")?;
        Ok(range
            .into_iter()
            .zip(hashes.iter().map(Histogram::from_fields))
            .collect())
    }

    /// Lateness over the current minute and the four before it, across every replica.
    #[tracing::instrument(skip_all)]
    pub async fn lateness(&self) -> anyhow::Result<LatenessSummary> {
        let mut all = Histogram::default();
        for (_, minute) in self.lateness_minutes(SUMMARY_MINUTES).await? {
            all.merge(&minute);
        }
        Ok(LatenessSummary::from(&all))
    }

    /// One point a minute over the last `minutes`, oldest first, the current minute last.
    #[tracing::instrument(skip_all, fields(minutes = minutes.get()))]
    pub async fn lateness_chart(
        &self,
        minutes: ChartMinutes,
    ) -> anyhow::Result<Vec<LatenessPoint>> {
        self.lateness_minutes(minutes.get())
            .await?
            .into_iter()
            .map(|(minute, histogram)| {
                Ok(LatenessPoint {
                    at: datetime(minute * 60_000)?,
                    lateness: LatenessSummary::from(&histogram),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_says_what_the_action_needs_and_where_the_job_is() {
        assert_eq!(
            JobAction::Retry.refusal("delayed"),
            "Only a failed job can be retried: this job is delayed (waiting for its due time)"
        );
        assert_eq!(
            JobAction::Promote.refusal("completed"),
            "Only a delayed job can be promoted: this job already fired"
        );
        assert_eq!(
            JobAction::Discard.refusal("active"),
            "Only a failed job can be discarded: this job is active (a worker is firing it)"
        );
    }
}
