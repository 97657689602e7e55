//! The pages, one module per resource, and what they share: the layout's view of the
//! visitor, redirects to sign-in, the plain message page, and safe `next` targets.
//!
//! Handlers unpack the form or path, call [`crate::api`], and render a template; they decide
//! nothing the API decides (validation, ownership, state), they only put its answer in words.

mod admin;
mod home;
mod orders;
mod refunds;
mod session;
mod signed_in;
mod tickets;

use std::sync::Arc;

use askama::Template;
use axum::{
    Router,
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use ticketing_common::session::{CurrentUser, SessionKeys};

pub use self::signed_in::SignedIn;
use crate::api::{Api, ApiFailure};

/// The router's state: the API client.
pub type State = Arc<Api>;

pub fn router() -> Router<State> {
    Router::new()
        .merge(home::router())
        .merge(session::router())
        .merge(tickets::router())
        .merge(orders::router())
        .merge(refunds::router())
        .merge(admin::router())
}

/// How the order page takes a card: Stripe's card element when a publishable key is set,
/// otherwise the development provider's test cards.
#[derive(Debug, Clone, Default)]
pub struct CardForm {
    pub stripe_publishable_key: Option<String>,
}

/// The signed-in visitor as the layout shows them: the e-mail in the header, and for an
/// operator a link to the console.
#[derive(Debug, Clone, Default)]
pub struct Nav {
    pub email: Option<String>,
    pub operator: bool,
}

impl Nav {
    /// `user` as the layout shows them; `keys` say whether they are an operator.
    pub fn of(user: &CurrentUser, keys: &SessionKeys) -> Self {
        Nav {
            email: user.0.as_ref().map(|u| u.email.clone()),
            operator: user.0.as_ref().is_some_and(|u| keys.is_operator(u)),
        }
    }
}

/// Renders a template with a status; a template that fails to render is our bug, said plainly.
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(error = %error, "template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side.",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    nav: Nav,
    title: &'a str,
    message: &'a str,
}

/// A plain page with a heading and a sentence (refusals, unknown pages, API failures).
pub fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    render(
        status,
        &MessagePage {
            nav: Nav::default(),
            title,
            message,
        },
    )
}

/// The page for an API failure that leaves nothing to show: 404 as "not found", 401 as a
/// trip to sign-in (or, for a signed-in visitor, "not yours"), anything else in the API's
/// words.
pub fn failure_page(failure: &ApiFailure, here: &str, signed_in: bool) -> Response {
    match failure.status {
        Some(StatusCode::UNAUTHORIZED) if !signed_in => signin_redirect(here),
        Some(StatusCode::UNAUTHORIZED) => message_page(
            StatusCode::FORBIDDEN,
            "Not yours",
            &format!("This belongs to someone else. ({})", failure.sentence()),
        ),
        Some(StatusCode::NOT_FOUND) => {
            message_page(StatusCode::NOT_FOUND, "Not found", &failure.sentence())
        }
        Some(status) if status.is_client_error() => {
            message_page(status, "That did not work", &failure.sentence())
        }
        _ => message_page(
            StatusCode::BAD_GATEWAY,
            "Please try again",
            &failure.sentence(),
        ),
    }
}

/// `303 See Other` to `/signin?next=<here>`.
pub fn signin_redirect(here: &str) -> Response {
    Redirect::to(&format!("/signin?next={}", encode(here))).into_response()
}

/// A redirect that also hands the browser the API's session cookies.
pub fn redirect_with_cookies(to: &str, cookies: Vec<HeaderValue>) -> Response {
    let mut response = Redirect::to(to).into_response();
    for cookie in cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// `next` if it is a path on this site, otherwise `/`. Refuses `//host`, `/\host` and
/// anything with a scheme, so sign-in can never send a visitor elsewhere.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(|c| c.is_control()) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// A price as people read it.
pub fn money(price: f64) -> String {
    format!("${price:.2}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/tickets/1?x=2")), "/tickets/1?x=2");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn prices_read_as_money() {
        assert_eq!(money(25.5), "$25.50");
        assert_eq!(money(1000000.0), "$1000000.00");
    }
}
