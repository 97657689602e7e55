//! The pages, one module per resource, and what they share: the layout's view of the
//! visitor, redirects to sign-in, the plain message page, and safe `next` targets.
//!
//! Handlers unpack the form or path, call [`crate::api`], and render a template; they decide
//! nothing the API decides (validation, ownership, state), they only put its answer in words.

mod admin;
mod events;
pub mod flash;
mod home;
pub mod layout;
mod listings;
mod orders;
mod paging;
pub mod price;
mod refunds;
mod session;
mod signed_in;
mod tickets;
mod time;

use std::sync::Arc;

use askama::Template;
use axum::{
    Router,
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::any,
};
use ticketing_common::session::{CurrentUser, SessionKeys};

pub use self::layout::{MaybeSignedIn, PageId};
pub use self::signed_in::SignedIn;
use self::{flash::Flash, layout::ErrorPage};
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
        .merge(listings::router())
        .merge(events::router())
        .merge(admin::router())
        // Pages answer a method they do not take with a page, not the API's JSON.
        .method_not_allowed_fallback(layout::method_not_allowed)
        // Every other path (the composed router's catch-all): the 404 page, JSON for `/api/`.
        .route("/{*rest}", any(layout::not_found))
}

/// How the order page takes a card: Stripe's card element when a publishable key is set,
/// otherwise the development provider's test cards.
#[derive(Debug, Clone, Default)]
pub struct CardForm {
    pub stripe_publishable_key: Option<String>,
}

/// The visitor as the layout shows them: the e-mail in the header, for an operator a link to
/// the console, and the one-shot message the page opens with.
#[derive(Debug, Clone, Default)]
pub struct Nav {
    pub email: Option<String>,
    pub operator: bool,
    pub flash: Option<Flash>,
}

impl Nav {
    /// `user` as the layout shows them; `keys` say whether they are an operator.
    pub fn of(user: &CurrentUser, keys: &SessionKeys) -> Self {
        Nav {
            email: user.0.as_ref().map(|u| u.email.clone()),
            operator: user.0.as_ref().is_some_and(|u| keys.is_operator(u)),
            flash: None,
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

/// A plain page with a heading and a sentence (refusals, unknown pages, API failures), in the
/// site's layout with the visitor's own header ([`layout::layout`] renders it).
pub fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    // A page already, should it ever be sent without the layout's middleware.
    let mut response = render(
        status,
        &MessagePage {
            nav: Nav::default(),
            title,
            message,
        },
    );
    response.extensions_mut().insert(ErrorPage {
        title: title.to_owned(),
        message: message.to_owned(),
    });
    response
}

/// The page for an API failure that leaves nothing to show: 404 as "not found", 401 as a
/// trip to sign-in, or for a signed-in visitor the 403 "not yours" page (the API answers 401
/// for someone else's order or ticket; the visitor is signed in, just not as its owner, so
/// 403 is the truthful status, and the page says to sign in with the right account; a 404
/// would hide nothing, since the API already tells an unknown id from someone else's). A
/// 503 stays a 503 (with the API's `Retry-After` advice in words); other failures of the
/// API are 502, the API's words on the page.
pub fn failure_page(failure: &ApiFailure, here: &str, signed_in: bool) -> Response {
    match failure.status {
        Some(StatusCode::UNAUTHORIZED) if !signed_in => signin_redirect(here),
        Some(StatusCode::UNAUTHORIZED) => message_page(
            StatusCode::FORBIDDEN,
            "Not yours",
            &format!(
                "This belongs to another account, so it is not shown to you. If it is yours, sign out and sign in with the account that made it. ({})",
                failure.sentence()
            ),
        ),
        Some(StatusCode::NOT_FOUND) => {
            message_page(StatusCode::NOT_FOUND, "Not found", &failure.sentence())
        }
        Some(status) if status.is_client_error() => {
            message_page(status, "That did not work", &failure.sentence())
        }
        Some(StatusCode::SERVICE_UNAVAILABLE) => message_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Please try again",
            &failure.sentence(),
        ),
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

/// Percent-decodes what [`encode`] made (which never leaves a `+` unescaped); `None` for
/// anything malformed. The services' decoder, so there is one.
pub use ticketing_common::http::decode_query_value as decode;

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
