//! The console's parts as its templates show them: rows of plain strings, times in words,
//! and what could not be read as a sentence in its place.

use time::OffsetDateTime;
use uuid::Uuid;

use super::chart;
use crate::{
    api::{
        ApiFailure,
        operations::{
            Attention, LatenessPoint, OperatorAction, QueueJob, QueueStatus, ServiceStatus,
        },
    },
    pages::money,
};

/// Operator actions shown, newest first, across services.
const ACTIONS_SHOWN: usize = 20;

/// A time as the console shows it: `2026-03-01 12:00:05 UTC`, or a dash.
fn clock(at: Option<OffsetDateTime>) -> String {
    at.map_or_else(
        || "—".to_owned(),
        |at| {
            let at = at.to_offset(time::UtcOffset::UTC);
            format!(
                "{}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                at.year(),
                at.month() as u8,
                at.day(),
                at.hour(),
                at.minute(),
                at.second()
            )
        },
    )
}

/// How far `at` is from `now`: `in 14 min`, `3 s ago`.
fn relative(at: Option<OffsetDateTime>, now: OffsetDateTime) -> String {
    let Some(at) = at else {
        return String::new();
    };
    let seconds = (at - now).whole_seconds();
    let size = seconds.unsigned_abs();
    let amount = match size {
        0..60 => format!("{size} s"),
        60..3600 => format!("{} min", size / 60),
        3600..86_400 => format!("{} h {} min", size / 3600, size % 3600 / 60),
        _ => format!("{} d", size / 86_400),
    };
    if seconds >= 0 {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// Milliseconds, or a dash when nothing fired.
fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{} ms", chart::number(v)))
}

/// A failed read, in words, for the place its data would have gone.
pub(super) fn unavailable(failure: &ApiFailure) -> String {
    match failure.status {
        Some(status) => format!("{} ({})", failure.sentence(), status.as_u16()),
        None => failure.sentence(),
    }
}

/// A tab of the jobs list.
pub(super) struct Tab {
    pub(super) state: &'static str,
    pub(super) label: &'static str,
    pub(super) count: Option<u64>,
    pub(super) href: String,
    pub(super) current: bool,
}

/// A job as the list shows it.
pub(super) struct JobRow {
    pub(super) id: String,
    pub(super) order_id: Option<Uuid>,
    pub(super) due: String,
    pub(super) due_relative: String,
    pub(super) attempts: u64,
    pub(super) error: Option<String>,
    pub(super) failed_at: String,
}

impl JobRow {
    pub(super) fn of(job: QueueJob, now: OffsetDateTime) -> JobRow {
        JobRow {
            due: clock(job.due_at),
            due_relative: relative(job.due_at, now),
            failed_at: clock(job.failed_at),
            id: job.id,
            order_id: job.order_id,
            attempts: job.attempts,
            error: job.last_error.filter(|e| !e.is_empty()),
        }
    }
}

/// One minute of the chart, for the table beside it.
pub(super) struct MinuteRow {
    pub(super) at: String,
    pub(super) p50: String,
    pub(super) p99: String,
    pub(super) count: u64,
}

/// The queue's part of a page: counts, chart and one state's jobs.
pub(super) struct QueueView {
    pub(super) status: Result<QueueStatus, String>,
    /// The chart; `None` when nothing fired in the last hour.
    pub(super) chart: Option<String>,
    pub(super) minutes: Vec<MinuteRow>,
    pub(super) chart_error: Option<String>,
    pub(super) tabs: Vec<Tab>,
    pub(super) state: &'static str,
    pub(super) jobs: Result<Vec<JobRow>, String>,
    /// The first job's position on this page (1-based), for the table's caption.
    pub(super) first: u32,
    pub(super) previous: Option<String>,
    pub(super) next: Option<String>,
    /// The queue's own page (`/admin/queues`), whose title is the queue's heading.
    pub(super) standalone: bool,
}

impl QueueView {
    /// The level of the queue's subheadings: under the page's title, or under the console's
    /// "Expiration queue".
    pub(super) fn level(&self) -> u8 {
        if self.standalone { 2 } else { 3 }
    }

    pub(super) fn lateness_line(&self) -> Option<String> {
        let status = self.status.as_ref().ok()?;
        let l = status.lateness;
        Some(
            if l.p50_ms.is_none() && l.p99_ms.is_none() && l.max_ms.is_none() {
                "No expiry fired in the last 5 minutes.".to_owned()
            } else {
                format!(
                    "Lateness over the last 5 minutes: p50 {}, p99 {}, max {}.",
                    ms(l.p50_ms),
                    ms(l.p99_ms),
                    ms(l.max_ms)
                )
            },
        )
    }

    pub(super) fn shows_failed(&self) -> bool {
        self.state == "failed"
    }

    pub(super) fn shows_delayed(&self) -> bool {
        self.state == "delayed"
    }
}

/// The minutes in which something fired, newest first.
pub(super) fn minute_rows(points: &[LatenessPoint]) -> Vec<MinuteRow> {
    let mut rows: Vec<(Option<OffsetDateTime>, MinuteRow)> = points
        .iter()
        .filter(|p| p.count > 0)
        .map(|p| {
            (
                p.at,
                MinuteRow {
                    at: p.at.map_or_else(|| "—".to_owned(), chart::hh_mm),
                    p50: ms(p.p50_ms),
                    p99: ms(p.p99_ms),
                    count: p.count,
                },
            )
        })
        .collect();
    rows.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    rows.into_iter().map(|(_, row)| row).collect()
}

/// A service's part of the console.
pub(super) struct ServiceView {
    pub(super) name: &'static str,
    pub(super) status: Result<ServiceStatus, String>,
}

impl ServiceView {
    pub(super) fn parked_rows(&self) -> Vec<ParkedRow> {
        let Ok(status) = &self.status else {
            return Vec::new();
        };
        status
            .parked
            .iter()
            .map(|p| ParkedRow {
                id: p.id,
                subject: p.subject.clone(),
                error: p.error.clone(),
                parked_at: clock(p.parked_at),
            })
            .collect()
    }
}

pub(super) struct ParkedRow {
    pub(super) id: Uuid,
    pub(super) subject: String,
    pub(super) error: String,
    pub(super) parked_at: String,
}

pub(super) struct ChargeRow {
    pub(super) charge_id: String,
    pub(super) order_id: Option<Uuid>,
    pub(super) amount: String,
    pub(super) reason: String,
    pub(super) recorded_at: String,
}

pub(super) struct RefusalRow {
    pub(super) id: Uuid,
    pub(super) order_id: Uuid,
    pub(super) amount: String,
    pub(super) reason: &'static str,
    pub(super) message: String,
    pub(super) requested_by: String,
    pub(super) created_at: String,
}

/// Payments' attention list as the console shows it.
pub(super) struct AttentionView {
    pub(super) charges: Vec<ChargeRow>,
    pub(super) refusals: Vec<RefusalRow>,
}

impl AttentionView {
    pub(super) fn of(attention: Attention, me: Uuid) -> AttentionView {
        AttentionView {
            charges: attention
                .unmatched_charges
                .into_iter()
                .map(|c| ChargeRow {
                    charge_id: c.charge_id,
                    order_id: c.order_id,
                    amount: c.amount.map_or_else(|| "—".to_owned(), money),
                    reason: c.reason,
                    recorded_at: clock(c.recorded_at),
                })
                .collect(),
            refusals: attention
                .refused_refunds
                .into_iter()
                .map(|r| RefusalRow {
                    id: r.id,
                    order_id: r.order_id,
                    amount: money(r.amount),
                    reason: match r.reason.as_str() {
                        "operator" => "Refund by an operator",
                        "cancelled_order" => "Charge on a cancelled order",
                        _ => "Refund",
                    },
                    message: r.message.unwrap_or_default(),
                    requested_by: r
                        .requested_by
                        .map_or_else(|| "automatic".to_owned(), |id| who(id, None, me)),
                    created_at: clock(r.created_at),
                })
                .collect(),
        }
    }
}

/// An operator by id; "you" for the operator looking.
fn who(id: Uuid, email: Option<&str>, me: Uuid) -> String {
    match email {
        _ if id == me => "you".to_owned(),
        Some(email) => email.to_owned(),
        None => format!("operator {id}"),
    }
}

/// One operator action, with the service it was recorded in.
pub(super) struct ActionRow {
    pub(super) at: String,
    pub(super) who: String,
    pub(super) service: &'static str,
    pub(super) action: String,
    pub(super) target: String,
}

/// The latest actions of every service read, newest first.
pub(super) fn latest_actions(services: &[ServiceView], me: Uuid) -> Vec<ActionRow> {
    let mut all: Vec<(&'static str, &OperatorAction)> = services
        .iter()
        .filter_map(|s| s.status.as_ref().ok().map(|status| (s.name, status)))
        .flat_map(|(name, status)| status.actions.iter().map(move |a| (name, a)))
        .collect();
    all.sort_by_key(|(_, a)| std::cmp::Reverse(a.at));
    all.into_iter()
        .take(ACTIONS_SHOWN)
        .map(|(service, a)| ActionRow {
            at: clock(a.at),
            who: who(a.operator_id, a.operator_email.as_deref(), me),
            service,
            action: a.action.clone(),
            target: a.target.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use time::{Duration, macros::datetime};

    use super::*;

    #[test]
    fn times_read_as_clock_times_and_distances() {
        let now = datetime!(2026-03-01 12:00:00 UTC);
        assert_eq!(clock(Some(now)), "2026-03-01 12:00:00 UTC");
        assert_eq!(clock(None), "—");
        assert_eq!(
            relative(Some(now + Duration::minutes(14)), now),
            "in 14 min"
        );
        assert_eq!(relative(Some(now - Duration::seconds(3)), now), "3 s ago");
        assert_eq!(
            relative(Some(now + Duration::minutes(95)), now),
            "in 1 h 35 min"
        );
        assert_eq!(relative(None, now), "");
    }

    #[test]
    fn the_latest_actions_of_every_service_come_newest_first_and_you_are_you() {
        let me = Uuid::now_v7();
        let other = Uuid::now_v7();
        let status = |service: &str, actions: Vec<OperatorAction>| ServiceStatus {
            service: service.into(),
            outbox_backlog: 0,
            consumers: Vec::new(),
            parked: Vec::new(),
            actions,
        };
        let action = |by, what: &str, at| OperatorAction {
            operator_id: by,
            operator_email: None,
            action: what.into(),
            target: "t".into(),
            at: Some(at),
        };
        let services = vec![
            ServiceView {
                name: "orders",
                status: Ok(status(
                    "orders",
                    vec![action(me, "replay", datetime!(2026-03-01 12:00 UTC))],
                )),
            },
            ServiceView {
                name: "payments",
                status: Err("down".into()),
            },
            ServiceView {
                name: "expiration",
                status: Ok(status(
                    "expiration",
                    vec![action(other, "retry", datetime!(2026-03-01 12:05 UTC))],
                )),
            },
        ];
        let rows = latest_actions(&services, me);
        let seen: Vec<(&str, &str, &str)> = rows
            .iter()
            .map(|r| (r.service, r.action.as_str(), r.who.as_str()))
            .collect();
        assert_eq!(seen[0].0, "expiration");
        assert_eq!(seen[1], ("orders", "replay", "you"));
        assert_eq!(rows[0].who, format!("operator {other}"));
    }
}
