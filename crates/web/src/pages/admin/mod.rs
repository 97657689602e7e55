//! `/admin`, the operators' console, and `/admin/queues`, the expiration queue alone.
//!
//! The console reads only the operators' API routes ([`crate::api::operations`]), with the
//! operator's own session, and shows what they answer: the queue's counts, its lateness over
//! the last hour ([`chart`]) and its jobs by state; each service's outbox backlog, consumers
//! and parked events; payments needing attention; and the latest operator actions. A part
//! that cannot be read says so in its place; the rest of the page still shows. Its buttons
//! are plain forms ([`actions`]) that come back here with the outcome in words; [`view`] turns
//! the API's answers into what the templates show.
//!
//! Only operators (`ADMIN_EMAILS`) see it; anyone else signed in gets the operators-only page,
//! and the API refuses them anyway.

mod actions;
mod chart;
mod view;

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

use self::{
    actions::{Notice, take_notice},
    view::{
        ActionRow, AttentionView, JobRow, QueueView, ServiceView, Tab, latest_actions, minute_rows,
        unavailable,
    },
};
use super::{Nav, SignedIn, State, failure_page, message_page, render};
use crate::api::{
    ApiFailure, Visitor,
    operations::{JobState, SERVICES},
};

/// Jobs per page of a state's list.
const JOBS_PER_PAGE: u32 = 20;
/// The lateness chart's window.
const CHART_MINUTES: u32 = 60;
/// The queue's own page.
const QUEUES: &str = "/admin/queues";

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
    use super::*;
    use crate::api::operations::ServiceStatus;

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
