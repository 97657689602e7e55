//! `ticketing queue`: the operators' queue board at a shell, through the same
//! [`board`](ticketing_expiration::board) functions as `/api/queues`. It opens only the queue's
//! Redis (`REDIS_QUEUE_URL`, keys under `TICKETING_NAMESPACE`); nothing else is built or
//! started.
//!
//! A shell has no session, so an action done here is recorded in the queue's action log as
//! the nil operator id (`00000000-0000-0000-0000-000000000000`), which no user has.

use std::time::Duration;

use anyhow::bail;
use clap::Subcommand;
use ticketing_expiration::{
    board::{self, ActionError, Counts, JobAction, JobInfo, JobState, Limit, Offset},
    queue::Queue,
};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use uuid::Uuid;

use crate::cli::Cli;

#[derive(Debug, Subcommand)]
pub enum Action {
    /// Jobs by state, and how late jobs fired over the last 5 minutes.
    Stats,
    /// The jobs in one state, earliest first, with their attempts and last error.
    Jobs {
        /// delayed, active or failed.
        #[arg(long)]
        state: JobState,
        /// How many (1-500).
        #[arg(long, default_value = "50")]
        limit: Limit,
        /// How many to skip (0-1000000).
        #[arg(long, default_value = "0")]
        offset: Offset,
    },
    /// Schedule a failed job again, due now, with a fresh set of attempts.
    Retry {
        /// The job's id (its order's id).
        id: Uuid,
    },
    /// Fire a delayed job now.
    Promote {
        /// The job's id (its order's id).
        id: Uuid,
    },
    /// Drop a failed job for good: its order will not be expired by the queue.
    Discard {
        /// The job's id (its order's id).
        id: Uuid,
    },
}

fn format_time(at: Option<OffsetDateTime>) -> String {
    at.and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_else(|| "-".to_owned())
}

fn ms(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms"))
}

fn describe(job: &JobInfo) -> String {
    let mut line = format!(
        "{}  due {}  attempts {}",
        job.order_id,
        format_time(job.due_at),
        job.attempts
    );
    if let Some(failed_at) = job.failed_at {
        line.push_str(&format!("  failed {}", format_time(Some(failed_at))));
    }
    if let Some(error) = &job.last_error {
        // One line per job, whatever the error said.
        let error: String = error
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(200)
            .collect();
        line.push_str(&format!("  error: {error}"));
    }
    line
}

pub async fn run(cli: &Cli, action: &Action) -> anyhow::Result<()> {
    // The lease is never used: nothing is claimed.
    let queue = Queue::connect(
        cli.common.queue_redis_url(),
        cli.common.namespace.redis_prefix(),
        Duration::from_secs(30),
    )
    .await?;
    let namespace = &cli.common.namespace;
    let (job_action, id) = match action {
        Action::Stats => {
            let counts = queue.counts().await?;
            let lateness = queue.lateness().await?;
            println!(
                "expiration (namespace {namespace}): delayed {}  active {}  failed {}  completed {}",
                counts.delayed, counts.active, counts.failed, counts.completed
            );
            if lateness.count == 0 {
                println!("lateness, last 5 minutes: no job fired");
            } else {
                println!(
                    "lateness, last 5 minutes: p50 {}  p99 {}  max {}  ({} fired)",
                    ms(lateness.p50_ms),
                    ms(lateness.p99_ms),
                    ms(lateness.max_ms),
                    lateness.count
                );
            }
            if counts == Counts::default() {
                println!(
                    "The queue is empty and never fired a job: has expiration run in namespace {namespace} (TICKETING_NAMESPACE, REDIS_QUEUE_URL)?"
                );
            }
            return Ok(());
        }
        Action::Jobs {
            state,
            limit,
            offset,
        } => {
            let jobs = queue.jobs(*state, *limit, *offset).await?;
            if jobs.is_empty() {
                println!("No {state} jobs (namespace {namespace}).");
            }
            for job in &jobs {
                println!("{}", describe(job));
            }
            return Ok(());
        }
        Action::Retry { id } => (JobAction::Retry, *id),
        Action::Promote { id } => (JobAction::Promote, *id),
        Action::Discard { id } => (JobAction::Discard, *id),
    };
    match board::act(&queue, (Uuid::nil(), "command line"), job_action, id).await {
        Ok(acted) => {
            match acted.due_at {
                Some(due) => println!("{} {id}: due {}", past(job_action), format_time(Some(due))),
                None => println!("{} {id}", past(job_action)),
            }
            Ok(())
        }
        Err(ActionError::NotFound) => {
            bail!(
                "no job {id} in namespace {namespace} (ticketing queue jobs --state failed lists them)"
            )
        }
        Err(ActionError::WrongState(message)) => bail!("job {id}: {message}"),
        Err(ActionError::Unexpected(error)) => Err(error),
    }
}

fn past(action: JobAction) -> &'static str {
    match action {
        JobAction::Retry => "retried",
        JobAction::Promote => "promoted",
        JobAction::Discard => "discarded",
    }
}
