//! `/admin`, the operators' console, and `/admin/queues`, the expiration queue alone.
//!
//! The console reads only the operators' API routes ([`crate::api::operations`]), with the
//! operator's own session, and shows what they answer: the queue's counts, its lateness over
//! the last hour ([`chart`]) and its jobs by state; each service's outbox backlog, consumers
//! and parked events; payments needing attention; and the latest operator actions. A part
//! that cannot be read says so in its place; the rest of the page still shows. Its buttons
//! are plain forms ([`actions`]) that come back here with the outcome in words.
//!
//! Only operators (`ADMIN_EMAILS`) see it; anyone else signed in gets the operators-only page,
//! and the API refuses them anyway.

mod actions;
mod chart;

use askama::Template;
use axum::{
    Router,
    extract::{Query, State as Extract},
    http::{HeaderMap, StatusCode},
    response::Response,
    routing::get,
};
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

use self::actions::{Notice, take_notice};
use super::{Nav, SignedIn, State, failure_page, message_page, money, render};
use crate::api::{
    ApiFailure, Visitor,
    operations::{
        Attention, JobState, LatenessPoint, OperatorAction, QueueJob, QueueStatus, SERVICES,
        ServiceStatus,
    },
};

/// Jobs per page of a state's list.
const JOBS_PER_PAGE: u32 = 20;
/// The lateness chart's window.
const CHART_MINUTES: u32 = 60;
/// The queue's own page.
const QUEUES: &str = "/admin/queues";
/// Operator actions shown, newest first, across services.
const ACTIONS_SHOWN: usize = 20;

pub fn router() -> Router<State> {
    Router::new()
        .route("/admin", get(console))
        .route(QUEUES, get(queues))
        .merge(actions::router())
}

/// Which jobs to list: `?state=delayed|active|failed&offset=N`.
#[derive(Debug, Default, Deserialize)]
pub struct Listing {
    state: Option<String>,
    offset: Option<u32>,
}

impl Listing {
    fn state(&self) -> JobState {
        self.state
            .as_deref()
            .and_then(JobState::parse)
            .unwrap_or(JobState::Failed)
    }

    fn offset(&self) -> u32 {
        self.offset.unwrap_or(0).min(1_000_000)
    }
}

/// The page a list of jobs is on, as a link: `/admin?state=failed&offset=20`.
fn listing_href(base: &str, state: JobState, offset: u32) -> String {
    let mut href = format!("{base}?state={}", state.as_str());
    if offset > 0 {
        href.push_str(&format!("&offset={offset}"));
    }
    href
}

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
fn unavailable(failure: &ApiFailure) -> String {
    match failure.status {
        Some(status) => format!("{} ({})", failure.sentence(), status.as_u16()),
        None => failure.sentence(),
    }
}

/// A tab of the jobs list.
pub struct Tab {
    state: &'static str,
    label: &'static str,
    count: Option<u64>,
    href: String,
    current: bool,
}

/// A job as the list shows it.
pub struct JobRow {
    id: String,
    order_id: Option<Uuid>,
    due: String,
    due_relative: String,
    attempts: u64,
    error: Option<String>,
    failed_at: String,
}

impl JobRow {
    fn of(job: QueueJob, now: OffsetDateTime) -> JobRow {
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
pub struct MinuteRow {
    at: String,
    p50: String,
    p99: String,
    count: u64,
}

/// The queue's part of a page: counts, chart and one state's jobs.
pub struct QueueView {
    status: Result<QueueStatus, String>,
    /// The chart; `None` when nothing fired in the last hour.
    chart: Option<String>,
    minutes: Vec<MinuteRow>,
    chart_error: Option<String>,
    tabs: Vec<Tab>,
    state: &'static str,
    jobs: Result<Vec<JobRow>, String>,
    /// The first job's position on this page (1-based), for the table's caption.
    first: u32,
    previous: Option<String>,
    next: Option<String>,
    /// The queue's own page (`/admin/queues`), whose title is the queue's heading.
    standalone: bool,
}

impl QueueView {
    /// The level of the queue's subheadings: under the page's title, or under the console's
    /// "Expiration queue".
    fn level(&self) -> u8 {
        if self.standalone { 2 } else { 3 }
    }

    fn lateness_line(&self) -> Option<String> {
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

    fn shows_failed(&self) -> bool {
        self.state == "failed"
    }

    fn shows_delayed(&self) -> bool {
        self.state == "delayed"
    }
}

/// Reads the queue's counts, its last hour of lateness and a page of one state's jobs.
async fn load_queue(
    api: &crate::api::Api,
    visitor: &Visitor,
    base: &str,
    listing: &Listing,
) -> Result<QueueView, ApiFailure> {
    let state = listing.state();
    let offset = listing.offset();
    let (status, lateness, jobs) = tokio::join!(
        api.queue(visitor),
        api.lateness(visitor, CHART_MINUTES),
        // One more than a page: whether there is a next page.
        api.jobs(visitor, state, JOBS_PER_PAGE + 1, offset),
    );
    // Signed in here but not to the API: the session ended meanwhile.
    if let Some(ended) = [
        status.as_ref().err(),
        lateness.as_ref().err(),
        jobs.as_ref().err(),
    ]
    .into_iter()
    .flatten()
    .find(|f| f.is(StatusCode::UNAUTHORIZED))
    {
        return Err(ended.clone());
    }
    let now = OffsetDateTime::now_utc();
    let counts = status.as_ref().ok().map(|s| s.counts);
    let tabs = JobState::ALL
        .into_iter()
        .map(|s| Tab {
            state: s.as_str(),
            label: match s {
                JobState::Delayed => "Delayed",
                JobState::Active => "Active",
                JobState::Failed => "Failed",
            },
            count: counts.map(|c| match s {
                JobState::Delayed => c.delayed,
                JobState::Active => c.active,
                JobState::Failed => c.failed,
            }),
            href: format!("{}#jobs", listing_href(base, s, 0)),
            current: s == state,
        })
        .collect();
    let (chart, minutes, chart_error) = match lateness {
        Ok(points) => (
            chart::lateness_svg(&points, now, i64::from(CHART_MINUTES)),
            minute_rows(&points),
            None,
        ),
        Err(failure) => (None, Vec::new(), Some(unavailable(&failure))),
    };
    let mut next = None;
    let jobs = jobs.map_err(|f| unavailable(&f)).map(|mut jobs| {
        if jobs.len() > JOBS_PER_PAGE as usize {
            jobs.truncate(JOBS_PER_PAGE as usize);
            next = Some(format!(
                "{}#jobs",
                listing_href(base, state, offset + JOBS_PER_PAGE)
            ));
        }
        jobs.into_iter().map(|job| JobRow::of(job, now)).collect()
    });
    let previous = (offset > 0).then(|| {
        format!(
            "{}#jobs",
            listing_href(base, state, offset.saturating_sub(JOBS_PER_PAGE))
        )
    });
    Ok(QueueView {
        status: status.map_err(|f| unavailable(&f)),
        chart,
        minutes,
        chart_error,
        tabs,
        state: state.as_str(),
        jobs,
        first: offset + 1,
        previous,
        next,
        standalone: base == QUEUES,
    })
}

/// The minutes in which something fired, newest first.
fn minute_rows(points: &[LatenessPoint]) -> Vec<MinuteRow> {
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

#[derive(Template)]
#[template(path = "admin_queues.html")]
struct QueuesPage {
    nav: Nav,
    notice: Option<Notice>,
    queue: QueueView,
    /// This page, for the forms to come back to.
    back: String,
}

/// `/admin/queues`: the expiration queue alone.
async fn queues(
    Extract(api): Extract<State>,
    viewer: SignedIn,
    headers: HeaderMap,
    Query(listing): Query<Listing>,
) -> Response {
    if !viewer.operator {
        return operators_only();
    }
    let back = listing_href(QUEUES, listing.state(), listing.offset());
    let queue = match load_queue(&api, &viewer.visitor, QUEUES, &listing).await {
        Ok(queue) => queue,
        Err(failure) => return failure_page(&failure, QUEUES, false),
    };
    let (notice, clear) = take_notice(&headers);
    let page = QueuesPage {
        nav: viewer.nav,
        notice,
        queue,
        back,
    };
    with_cleared(render(StatusCode::OK, &page), clear)
}

/// A service's part of the console.
pub struct ServiceView {
    name: &'static str,
    status: Result<ServiceStatus, String>,
}

impl ServiceView {
    fn parked_rows(&self) -> Vec<ParkedRow> {
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

pub struct ParkedRow {
    id: Uuid,
    subject: String,
    error: String,
    parked_at: String,
}

pub struct ChargeRow {
    charge_id: String,
    order_id: Option<Uuid>,
    amount: String,
    reason: String,
    recorded_at: String,
}

pub struct RefusalRow {
    id: Uuid,
    order_id: Uuid,
    amount: String,
    reason: &'static str,
    message: String,
    requested_by: String,
    created_at: String,
}

/// Payments' attention list as the console shows it.
pub struct AttentionView {
    charges: Vec<ChargeRow>,
    refusals: Vec<RefusalRow>,
}

impl AttentionView {
    fn of(attention: Attention, me: Uuid) -> AttentionView {
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
                        .map_or_else(|| "automatic".to_owned(), |id| who(id, me)),
                    created_at: clock(r.created_at),
                })
                .collect(),
        }
    }
}

/// An operator by id; "you" for the operator looking.
fn who(id: Uuid, me: Uuid) -> String {
    if id == me {
        "you".to_owned()
    } else {
        format!("operator {id}")
    }
}

/// One operator action, with the service it was recorded in.
pub struct ActionRow {
    at: String,
    who: String,
    service: &'static str,
    action: String,
    target: String,
}

/// The latest actions of every service read, newest first.
fn latest_actions(services: &[ServiceView], me: Uuid) -> Vec<ActionRow> {
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
            who: who(a.operator_id, me),
            service,
            action: a.action.clone(),
            target: a.target.clone(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "admin.html")]
struct ConsolePage {
    nav: Nav,
    notice: Option<Notice>,
    queue: QueueView,
    services: Vec<ServiceView>,
    attention: Result<AttentionView, String>,
    actions: Vec<ActionRow>,
    /// Services whose actions could not be read (the list may miss theirs).
    actions_missing: Vec<&'static str>,
    back: String,
}

/// `/admin`: everything an operator watches, on one page.
async fn console(
    Extract(api): Extract<State>,
    viewer: SignedIn,
    headers: HeaderMap,
    Query(listing): Query<Listing>,
) -> Response {
    if !viewer.operator {
        return operators_only();
    }
    let visitor = &viewer.visitor;
    let back = if listing.state.is_some() || listing.offset.is_some() {
        listing_href("/admin", listing.state(), listing.offset())
    } else {
        "/admin".to_owned()
    };
    let [auth, tickets, orders, payments, expiration] = SERVICES;
    let (queue, auth_s, tickets_s, orders_s, payments_s, expiration_s, attention) = tokio::join!(
        load_queue(&api, visitor, "/admin", &listing),
        api.service_status(visitor, auth),
        api.service_status(visitor, tickets),
        api.service_status(visitor, orders),
        api.service_status(visitor, payments),
        api.service_status(visitor, expiration),
        api.attention(visitor),
    );
    let statuses = [auth_s, tickets_s, orders_s, payments_s, expiration_s];
    // Signed in here but not to the API: the session ended meanwhile.
    let ended = statuses
        .iter()
        .filter_map(|s| s.as_ref().err())
        .chain(attention.as_ref().err())
        .find(|f| f.is(StatusCode::UNAUTHORIZED));
    let queue = match (queue, ended) {
        (Ok(queue), None) => queue,
        (Err(failure), _) => return failure_page(&failure, "/admin", false),
        (_, Some(failure)) => return failure_page(failure, "/admin", false),
    };
    let services: Vec<ServiceView> = SERVICES
        .into_iter()
        .zip(statuses)
        .map(|(service, status)| ServiceView {
            name: service.name,
            status: status.map_err(|f| unavailable(&f)),
        })
        .collect();
    let actions = latest_actions(&services, viewer.me.id);
    let actions_missing = services
        .iter()
        .filter(|s| s.status.is_err())
        .map(|s| s.name)
        .collect();
    let (notice, clear) = take_notice(&headers);
    let page = ConsolePage {
        nav: viewer.nav,
        notice,
        queue,
        attention: attention
            .map(|a| AttentionView::of(a, viewer.me.id))
            .map_err(|f| unavailable(&f)),
        services,
        actions,
        actions_missing,
        back,
    };
    with_cleared(render(StatusCode::OK, &page), clear)
}

/// The page anyone signed in but not an operator gets.
fn operators_only() -> Response {
    message_page(
        StatusCode::FORBIDDEN,
        "Operators only",
        "The console is for operators. Ask an administrator if you need access.",
    )
}

/// Adds the `Set-Cookie` that forgets a shown notice.
fn with_cleared(mut response: Response, clear: Option<axum::http::HeaderValue>) -> Response {
    if let Some(clear) = clear {
        response
            .headers_mut()
            .append(axum::http::header::SET_COOKIE, clear);
    }
    response
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
    fn a_listing_is_failed_jobs_from_the_start_unless_it_says_otherwise() {
        let listing = Listing::default();
        assert_eq!((listing.state(), listing.offset()), (JobState::Failed, 0));
        let listing = Listing {
            state: Some("delayed".into()),
            offset: Some(40),
        };
        assert_eq!(
            listing_href("/admin", listing.state(), listing.offset()),
            "/admin?state=delayed&offset=40"
        );
        let odd = Listing {
            state: Some("<script>".into()),
            offset: None,
        };
        assert_eq!(odd.state(), JobState::Failed);
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

    #[test]
    fn a_part_that_cannot_be_read_says_so_in_its_place_and_the_rest_still_shows() {
        let queue = QueueView {
            status: Err("The service is not answering right now.".into()),
            chart: None,
            minutes: Vec::new(),
            chart_error: Some("Something went wrong on our side (500)".into()),
            tabs: Vec::new(),
            state: "failed",
            jobs: Err("Not found (404)".into()),
            first: 1,
            previous: None,
            next: None,
            standalone: false,
        };
        let page = ConsolePage {
            nav: Nav::default(),
            notice: None,
            queue,
            services: vec![
                ServiceView {
                    name: "auth",
                    status: Err("The service is not answering right now.".into()),
                },
                ServiceView {
                    name: "orders",
                    status: Ok(ServiceStatus {
                        service: "orders".into(),
                        outbox_backlog: 3,
                        consumers: Vec::new(),
                        parked: Vec::new(),
                        actions: Vec::new(),
                    }),
                },
            ],
            attention: Err("Something went wrong on our side (503)".into()),
            actions: Vec::new(),
            actions_missing: vec!["auth"],
            back: "/admin".into(),
        };
        let html = page.render().unwrap();
        for id in [
            "queue-unavailable",
            "lateness-unavailable",
            "jobs-unavailable",
            "unavailable-auth",
            "attention-unavailable",
        ] {
            assert!(html.contains(&format!("id=\"{id}\"")), "{id}: {html}");
        }
        assert!(!html.contains("id=\"unavailable-orders\""), "{html}");
        assert!(html.contains("id=\"outbox-orders\">3<"), "{html}");
        assert!(
            html.contains("recorded in auth, which could not be read"),
            "{html}"
        );
    }
}
