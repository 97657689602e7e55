//! `/signup`, `/signin`, `/signout`: forms that call auth and hand its session cookie to the
//! browser, then send the visitor back where they were going (a new account with a welcome
//! on top).

use askama::Template;
use axum::{
    Form, Router,
    extract::{Query, State as Extract},
    http::StatusCode,
    response::Response,
    routing::get,
};
use serde::Deserialize;

use super::{
    MaybeSignedIn, Nav, State,
    flash::{Done, Flash},
    layout::back_to,
    redirect_with_cookies, render, safe_next,
};
use crate::api::ApiFailure;
use crate::api::Visitor;

pub fn router() -> Router<State> {
    Router::new()
        .route("/signup", get(signup_form).post(signup))
        .route("/signin", get(signin_form).post(signin))
        // A reopened sign-out address signs nothing out: only the header's button does.
        .route("/signout", get(|| async { back_to("/") }).post(signout))
}

#[derive(Template)]
#[template(path = "auth_form.html")]
struct AuthPage {
    nav: Nav,
    /// `signup` or `signin`.
    mode: &'static str,
    heading: &'static str,
    next: String,
    email: String,
    email_error: Option<String>,
    password_error: Option<String>,
    general: Vec<String>,
}

impl AuthPage {
    fn blank(nav: Nav, mode: &'static str, next: String) -> Self {
        AuthPage {
            nav,
            mode,
            heading: if mode == "signup" {
                "Create your account"
            } else {
                "Sign in"
            },
            next,
            email: String::new(),
            email_error: None,
            password_error: None,
            general: Vec::new(),
        }
    }

    fn refused(mut self, email: String, failure: &ApiFailure) -> Self {
        self.email = email;
        self.email_error = failure.for_field("email");
        self.password_error = failure.for_field("password");
        self.general = failure.general(&["email", "password"]);
        self
    }
}

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

async fn signup_form(MaybeSignedIn { nav, .. }: MaybeSignedIn, Query(q): Query<Next>) -> Response {
    let page = AuthPage::blank(nav, "signup", safe_next(q.next.as_deref()));
    render(StatusCode::OK, &page)
}

async fn signin_form(MaybeSignedIn { nav, .. }: MaybeSignedIn, Query(q): Query<Next>) -> Response {
    let page = AuthPage::blank(nav, "signin", safe_next(q.next.as_deref()));
    render(StatusCode::OK, &page)
}

#[tracing::instrument(skip_all)]
async fn signup(
    Extract(api): Extract<State>,
    MaybeSignedIn { nav, .. }: MaybeSignedIn,
    visitor: Visitor,
    Form(form): Form<Credentials>,
) -> Response {
    submit(&api, nav, &visitor, form, "signup").await
}

#[tracing::instrument(skip_all)]
async fn signin(
    Extract(api): Extract<State>,
    MaybeSignedIn { nav, .. }: MaybeSignedIn,
    visitor: Visitor,
    Form(form): Form<Credentials>,
) -> Response {
    submit(&api, nav, &visitor, form, "signin").await
}

/// Sends the credentials to auth's `mode` (`signup` or `signin`): on success hands its session
/// cookie to the browser and goes on to `next`; otherwise shows the form again with auth's
/// errors.
async fn submit(
    api: &crate::api::Api,
    nav: Nav,
    visitor: &Visitor,
    form: Credentials,
    mode: &'static str,
) -> Response {
    let next = safe_next(form.next.as_deref());
    match api
        .authenticate(visitor, mode, &form.email, &form.password)
        .await
    {
        Ok(answer) => {
            let mut response = redirect_with_cookies(&next, answer.set_cookies);
            if mode == "signup" {
                // Set on the way out with the session cookie; the next page says it.
                response.extensions_mut().insert(Flash::Done(Done::Welcome));
            }
            response
        }
        Err(failure) => refused(AuthPage::blank(nav, mode, next), form.email, &failure),
    }
}

fn refused(page: AuthPage, email: String, failure: &ApiFailure) -> Response {
    let status = failure
        .status
        .filter(|s| s.is_client_error())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    render(status, &page.refused(email, failure))
}

async fn signout(Extract(api): Extract<State>, visitor: Visitor) -> Response {
    let cookies = match api.signout(&visitor).await {
        Ok(answer) => answer.set_cookies,
        Err(_) => Vec::new(),
    };
    redirect_with_cookies("/", cookies)
}
