//! What every page shares beyond its template: the visitor's own header on error pages, the
//! one-shot message ([`super::flash`]), and the pages for unknown addresses and methods.
//!
//! [`layout`] wraps every route of the component. A handler that refuses says so with
//! [`super::message_page`], which marks its response as an error page; the middleware
//! renders that page in the site's layout with the visitor's real header (signed in or not,
//! operator or not), so no handler has to look the session up just to fail politely. It also
//! hands a message a handler attached to its redirect to the browser in the `flash` cookie,
//! and clears the cookie once a page has shown it.
//!
//! The web component owns every path but `/api/...`: an unknown page is the 404 page, while
//! an unknown `/api/` path, or any request that asks for JSON, keeps the contract's JSON
//! error body, as the API's own fallback gives it.

use std::sync::Arc;

use axum::{
    extract::{FromRequestParts, Request},
    http::{HeaderMap, StatusCode, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use ticketing_common::{
    ApiError,
    session::{CurrentUser, SessionKeys},
};
use uuid::Uuid;

use super::{
    MessagePage, Nav,
    flash::{self, Flash},
    render,
};
use crate::api::Forwarding;

/// Marks a response as an error page for [`layout`] to render: its status, heading and
/// sentence.
#[derive(Debug, Clone)]
pub(super) struct ErrorPage {
    pub title: String,
    pub message: String,
}

/// Renders error pages with the visitor's header, and carries one-shot messages.
pub async fn layout(mut request: Request, next: Next) -> Response {
    let flash = Flash::from_headers(request.headers());
    let https = request
        .extensions()
        .get::<Forwarding>()
        .is_some_and(|f| f.https);
    let keys = request.extensions().get::<Arc<SessionKeys>>().cloned();
    // Only the cookies are kept: the session is looked up again only for an error page.
    let mut cookies = HeaderMap::new();
    for value in request.headers().get_all(header::COOKIE) {
        cookies.append(header::COOKIE, value.clone());
    }
    if let Some(flash) = &flash {
        request.extensions_mut().insert(flash.clone());
    }

    let mut response = next.run(request).await;

    if let Some(page) = response.extensions_mut().remove::<ErrorPage>() {
        let mut nav = match &keys {
            Some(keys) => {
                let user = keys.session(&cookies).await.map(|s| s.user);
                Nav::of(&CurrentUser(user), keys)
            }
            None => Nav::default(),
        };
        nav.flash = flash.clone();
        let status = response.status();
        let mut page = render(
            status,
            &MessagePage {
                nav,
                title: &page.title,
                message: &page.message,
            },
        );
        // Keep what the handler said besides its page (`Allow`, `Retry-After`, cookies).
        for (name, value) in response.headers() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                page.headers_mut().append(name, value.clone());
            }
        }
        response = page;
    }

    if let Some(next_flash) = response.extensions_mut().remove::<Flash>() {
        if let Some(cookie) = next_flash.set_cookie(https) {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
    } else if flash.is_some() && is_page(&response) {
        // Shown in this page's header: forget it.
        response
            .headers_mut()
            .append(header::SET_COOKIE, flash::clear_cookie(https));
    }
    response
}

/// Whether a response is an HTML page (which shows the one-shot message).
fn is_page(response: &Response) -> bool {
    !response.status().is_redirection()
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/html"))
}

/// Whether the request wants the API's JSON rather than a page: an `/api` path, or an
/// `Accept` that names JSON and not HTML.
fn wants_json(parts: &Parts) -> bool {
    let path = parts.uri.path();
    if path == "/api" || path.starts_with("/api/") {
        return true;
    }
    let accept = parts
        .headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    accept.contains("json") && !accept.contains("text/html")
}

/// Every address no route takes: the 404 page, or for the API and its clients the contract's
/// JSON (the web component is the composed router's catch-all, so it must not swallow
/// `/api/` 404s).
pub(super) async fn not_found(request: Request) -> Response {
    let (parts, _) = request.into_parts();
    if wants_json(&parts) {
        return ApiError::NotFound("Route not found".into()).into_response();
    }
    super::message_page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no page at this address. It may have been mistyped, or what it showed is gone.",
    )
}

/// A method a page does not take (a `PUT` to a form's address): the 405 page, or JSON for a
/// client that asks for it.
pub(super) async fn method_not_allowed(request: Request) -> Response {
    let (parts, _) = request.into_parts();
    if wants_json(&parts) {
        return ApiError::MethodNotAllowed.into_response();
    }
    super::message_page(
        StatusCode::METHOD_NOT_ALLOWED,
        "Not possible here",
        "This address does not take that kind of request. Go back to the page and use its buttons.",
    )
}

/// A visitor who may or may not be signed in, and the layout's view of them.
#[derive(Debug, Clone)]
pub struct MaybeSignedIn {
    pub user: CurrentUser,
    pub nav: Nav,
}

impl<S: Send + Sync> FromRequestParts<S> for MaybeSignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = CurrentUser::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let mut nav = match parts.extensions.get::<Arc<SessionKeys>>() {
            Some(keys) => Nav::of(&user, keys),
            None => Nav::default(),
        };
        nav.flash = parts.extensions.get::<Flash>().cloned();
        Ok(MaybeSignedIn { user, nav })
    }
}

/// An id in a page's path (`/tickets/{id}`); anything that is not one is the 404 page, as an
/// address that shows nothing, never the framework's plain-text 400.
#[derive(Debug, Clone, Copy)]
pub struct PageId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PageId {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| not_a_page())?;
        Uuid::try_parse(&raw).map(PageId).map_err(|_| not_a_page())
    }
}

fn not_a_page() -> Response {
    super::message_page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "This address names nothing we know: the id in it is not one of ours. Check the link you followed.",
    )
}

/// `303` to the page a form belongs to, for a `GET` of a form's address (a reopened tab, a
/// link from the history): there is nothing to show there, and no reason for a 405.
pub(super) fn back_to(page: &str) -> Response {
    axum::response::Redirect::to(page).into_response()
}

#[cfg(test)]
mod tests {
    use axum::http::Request;

    use super::*;

    fn parts(path: &str, accept: Option<&str>) -> Parts {
        let mut request = Request::builder().uri(path);
        if let Some(accept) = accept {
            request = request.header(header::ACCEPT, accept);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_api_and_its_clients_get_json_and_browsers_get_pages() {
        assert!(wants_json(&parts("/api/nothing", None)));
        assert!(wants_json(&parts("/api", Some("text/html"))));
        assert!(wants_json(&parts("/nothing", Some("application/json"))));
        assert!(!wants_json(&parts("/nothing", None)));
        assert!(!wants_json(&parts("/apiary", None)));
        assert!(!wants_json(&parts(
            "/nothing",
            Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
        )));
        assert!(!wants_json(&parts("/nothing", Some("*/*"))));
    }
}
