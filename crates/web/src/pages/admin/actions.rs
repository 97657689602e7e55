//! The console's buttons: replay a parked event, retry or promote a job, and discard a failed
//! job after a confirmation page (a plain form, so it works without script). Each is a form
//! post guarded like every form by [`crate::csrf`]; it asks the API and goes back to the page
//! it came from with the outcome in one sentence: done, or the API's refusal in its own
//! words. A refusal (409, 404, a service not answering) is news for the operator, not an
//! error page.
//!
//! The sentence travels in a short-lived cookie (`console_notice`, only for `/admin`) rather
//! than in the address, so a link cannot make the console say something it did not.

use askama::Template;
use axum::{
    Extension, Form, Router,
    extract::{Path, Query, State as Extract, rejection::FormRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{operators_only, view::JobRow};
use crate::{
    api::{
        ApiFailure, Forwarding,
        operations::{JobAction, JobState, Service},
    },
    pages::{Nav, SignedIn, State, decode, encode, failure_page, message_page, render, safe_next},
};

/// The cookie that carries an action's outcome to the page shown next.
const NOTICE_COOKIE: &str = "console_notice";
/// The longest notice kept (an API message can be long).
const NOTICE_MAX: usize = 600;
/// Failed jobs looked through for the one a confirmation names.
const LOOKUP: u32 = 200;

pub fn router() -> Router<State> {
    Router::new()
        .route("/admin/services/{service}/parked/{id}/replay", post(replay))
        .route("/admin/jobs/{id}/retry", post(retry))
        .route("/admin/jobs/{id}/promote", post(promote))
        .route(
            "/admin/jobs/{id}/discard",
            get(confirm_discard).post(discard),
        )
}

/// The outcome of an action, shown once at the top of the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub ok: bool,
    pub text: String,
}

impl Notice {
    fn done(text: String) -> Notice {
        Notice { ok: true, text }
    }

    fn refused(text: String) -> Notice {
        Notice { ok: false, text }
    }

    fn cookie_value(&self) -> String {
        let text: String = self.text.chars().take(NOTICE_MAX).collect();
        format!("{}.{}", if self.ok { "ok" } else { "no" }, encode(&text))
    }

    fn from_cookie_value(value: &str) -> Option<Notice> {
        let (kind, text) = value.split_once('.')?;
        let text = decode(text)?;
        let text: String = text.chars().take(NOTICE_MAX).collect();
        match kind {
            "ok" => Some(Notice::done(text)),
            "no" => Some(Notice::refused(text)),
            _ => None,
        }
    }
}

/// The notice a request carries, and the `Set-Cookie` that forgets it once shown.
pub fn take_notice(headers: &HeaderMap) -> (Option<Notice>, Option<HeaderValue>) {
    let value = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(&format!("{NOTICE_COOKIE}=")));
    let Some(value) = value else {
        return (None, None);
    };
    let clear = HeaderValue::from_str(&format!(
        "{NOTICE_COOKIE}=; Path=/admin; Max-Age=0; HttpOnly; SameSite=Lax"
    ))
    .ok();
    (Notice::from_cookie_value(value), clear)
}

/// Back to `back` (a console page) with `notice` to show at its top, where the page opens
/// (an anchor further down would scroll the notice out of sight).
fn back_with(back: &str, notice: &Notice, forwarding: &Forwarding) -> Response {
    let mut response = Redirect::to(back).into_response();
    let secure = if forwarding.https { "; Secure" } else { "" };
    let cookie = format!(
        "{NOTICE_COOKIE}={}; Path=/admin; Max-Age=60; HttpOnly; SameSite=Lax{secure}",
        notice.cookie_value()
    );
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The form's hidden `back`: the console page that showed it, or the console.
#[derive(Debug, Default, Deserialize)]
pub struct Back {
    back: Option<String>,
}

impl Back {
    fn of(form: Result<Form<Back>, FormRejection>) -> Back {
        form.map(|Form(back)| back).unwrap_or_default()
    }

    /// A console page only (`/admin…`), so a form cannot send anyone elsewhere.
    fn page(&self) -> String {
        let back = safe_next(self.back.as_deref());
        let ours = back == "/admin" || back.starts_with("/admin?") || back.starts_with("/admin/");
        if ours && !back.contains('#') {
            back
        } else {
            "/admin".to_owned()
        }
    }
}

/// How a refused action is answered: a session that ended goes to sign in, an operator the
/// API does not know gets the operators-only page, anything else is a notice.
fn refused(failure: &ApiFailure, back: &str, what: String, forwarding: &Forwarding) -> Response {
    if failure.is(StatusCode::UNAUTHORIZED) {
        return failure_page(failure, back, false);
    }
    if failure.is(StatusCode::FORBIDDEN) {
        return operators_only();
    }
    let notice = Notice::refused(format!("{what}: {}", failure.sentence()));
    back_with(back, &notice, forwarding)
}

/// A job id as the queue makes them (a UUID); anything else names no job and is never put in
/// an API path.
fn job_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[tracing::instrument(skip_all, fields(service = %service, parked_id = %id))]
async fn replay(
    Extract(api): Extract<State>,
    Extension(forwarding): Extension<Forwarding>,
    viewer: SignedIn,
    Path((service, id)): Path<(String, String)>,
    form: Result<Form<Back>, FormRejection>,
) -> Response {
    if !viewer.operator {
        return operators_only();
    }
    let back = Back::of(form).page();
    let (Some(service), Ok(id)) = (Service::named(&service), Uuid::parse_str(&id)) else {
        let notice = Notice::refused("There is no such parked event.".into());
        return back_with(&back, &notice, &forwarding);
    };
    match api.replay(&viewer.visitor, service, id).await {
        Ok(()) => {
            let notice = Notice::done(format!(
                "Event {id} was replayed in {} and applied.",
                service.name
            ));
            back_with(&back, &notice, &forwarding)
        }
        Err(failure) => refused(
            &failure,
            &back,
            format!("Event {id} was not replayed in {}", service.name),
            &forwarding,
        ),
    }
}

/// Asks the queue to `action` the job `id`, and goes back with the outcome.
async fn act(
    api: &crate::api::Api,
    forwarding: &Forwarding,
    viewer: &SignedIn,
    id: &str,
    action: JobAction,
    back: &str,
) -> Response {
    if !job_id(id) {
        let notice = Notice::refused("There is no such job.".into());
        return back_with(back, &notice, forwarding);
    }
    let (done, not_done) = match action {
        JobAction::Retry => ("will run again now", "was not retried"),
        JobAction::Promote => ("fires now", "was not promoted"),
        JobAction::Discard => ("was discarded", "was not discarded"),
    };
    match api.job_action(&viewer.visitor, id, action).await {
        Ok(()) => {
            tracing::info!(job_id = id, ?action, "job action");
            let notice = Notice::done(format!("Job {id} {done}."));
            back_with(back, &notice, forwarding)
        }
        Err(failure) => refused(&failure, back, format!("Job {id} {not_done}"), forwarding),
    }
}

#[tracing::instrument(skip_all, fields(job_id = %id))]
async fn retry(
    Extract(api): Extract<State>,
    Extension(forwarding): Extension<Forwarding>,
    viewer: SignedIn,
    Path(id): Path<String>,
    form: Result<Form<Back>, FormRejection>,
) -> Response {
    if !viewer.operator {
        return operators_only();
    }
    let back = Back::of(form).page();
    act(&api, &forwarding, &viewer, &id, JobAction::Retry, &back).await
}

#[tracing::instrument(skip_all, fields(job_id = %id))]
async fn promote(
    Extract(api): Extract<State>,
    Extension(forwarding): Extension<Forwarding>,
    viewer: SignedIn,
    Path(id): Path<String>,
    form: Result<Form<Back>, FormRejection>,
) -> Response {
    if !viewer.operator {
        return operators_only();
    }
    let back = Back::of(form).page();
    act(&api, &forwarding, &viewer, &id, JobAction::Promote, &back).await
}

#[tracing::instrument(skip_all, fields(job_id = %id))]
async fn discard(
    Extract(api): Extract<State>,
    Extension(forwarding): Extension<Forwarding>,
    viewer: SignedIn,
    Path(id): Path<String>,
    form: Result<Form<Back>, FormRejection>,
) -> Response {
    if !viewer.operator {
        return operators_only();
    }
    let back = Back::of(form).page();
    act(&api, &forwarding, &viewer, &id, JobAction::Discard, &back).await
}

#[derive(Template)]
#[template(path = "discard.html")]
struct DiscardPage {
    nav: Nav,
    id: String,
    /// The job as the failed list shows it, when it is there.
    job: Option<JobRow>,
    back: String,
}

/// "Discard job …?": a discarded job is gone for good, so the list only links here.
async fn confirm_discard(
    Extract(api): Extract<State>,
    viewer: SignedIn,
    Path(id): Path<String>,
    Query(back): Query<Back>,
) -> Response {
    if !viewer.operator {
        return operators_only();
    }
    if !job_id(&id) {
        return message_page(StatusCode::NOT_FOUND, "Not found", "There is no such job.");
    }
    let back = back.page();
    let job = match api.jobs(&viewer.visitor, JobState::Failed, LOOKUP, 0).await {
        Ok(jobs) => jobs.into_iter().find(|job| job.id == id),
        Err(failure) if failure.is(StatusCode::UNAUTHORIZED) => {
            return failure_page(&failure, &format!("/admin/jobs/{id}/discard"), false);
        }
        // The page can ask without the details; the discard itself is the API's decision.
        Err(_) => None,
    };
    let page = DiscardPage {
        nav: viewer.nav,
        job: job.map(|job| JobRow::of(job, OffsetDateTime::now_utc())),
        id,
        back,
    };
    render(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_survives_its_cookie() {
        for notice in [
            Notice::done("Job 0190 will run again now.".into()),
            Notice::refused("Event x was not replayed in orders: The event was refused again: Order 1; not found (100%)".into()),
        ] {
            let value = notice.cookie_value();
            assert!(
                value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"%-_.~/".contains(&b)),
                "a plain cookie value: {value}"
            );
            let mut headers = HeaderMap::new();
            headers.insert(
                header::COOKIE,
                HeaderValue::from_str(&format!("session=abc; {NOTICE_COOKIE}={value}")).unwrap(),
            );
            let (read, clear) = take_notice(&headers);
            assert_eq!(read, Some(notice));
            assert!(clear.unwrap().to_str().unwrap().contains("Max-Age=0"));
        }
        assert_eq!(take_notice(&HeaderMap::new()), (None, None));
        assert_eq!(Notice::from_cookie_value("ok.%E"), None);
        assert_eq!(Notice::from_cookie_value("maybe.text"), None);
    }

    #[test]
    fn a_form_goes_back_to_a_console_page_only() {
        let back = |b: &str| {
            Back {
                back: Some(b.into()),
            }
            .page()
        };
        assert_eq!(
            back("/admin?state=delayed&offset=20"),
            "/admin?state=delayed&offset=20"
        );
        assert_eq!(
            back("/admin/queues?state=failed"),
            "/admin/queues?state=failed"
        );
        for elsewhere in [
            "/orders",
            "//evil.example/admin",
            "https://evil.example/admin",
            "/administrator",
            "/admin#x",
        ] {
            assert_eq!(back(elsewhere), "/admin", "{elsewhere}");
        }
        assert_eq!(Back::default().page(), "/admin");
    }

    #[test]
    fn only_plain_ids_name_a_job() {
        assert!(job_id("0190a0a0-0000-7000-8000-000000000000"));
        for odd in ["", "..", "a/b", "a?b", "a%2Fb", &"x".repeat(101)] {
            assert!(!job_id(odd), "{odd}");
        }
    }
}
