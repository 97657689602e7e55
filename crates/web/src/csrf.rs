//! Cross-site request forgery guard for the form posts.
//!
//! The session cookie is `SameSite=Lax`, which already keeps it off most cross-site posts;
//! this checks the browser's own word on where a form came from as well. A state-changing
//! request (anything but GET, HEAD and OPTIONS) must carry an `Origin`, or failing that a
//! `Referer`, whose host and port are the request's `Host`; otherwise it gets a plain page
//! and nothing happens. Only the web pages are wrapped: the JSON API is not a form target.

use axum::{
    extract::Request,
    http::{Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::pages::message_page;

/// Refuses a state-changing request that did not come from one of our own pages.
pub async fn check_origin(request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) || same_origin(request.headers())
    {
        return next.run(request).await;
    }
    tracing::warn!("form post refused: Origin/Referer does not match Host");
    message_page(
        StatusCode::FORBIDDEN,
        "Request refused",
        "This form was sent from another site, so it was not accepted. Go back to the page, reload it and try again.",
    )
    .into_response()
}

/// Whether `Origin` (or `Referer` without one) names the host the request was sent to.
pub fn same_origin(headers: &axum::http::HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let source = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|h| h.to_str().ok());
    source
        .and_then(authority)
        .is_some_and(|a| a.eq_ignore_ascii_case(host))
}

/// `host[:port]` of an absolute http(s) URL; `None` for anything else (`null`, relative).
fn authority(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    (!authority.is_empty() && !authority.contains('@')).then_some(authority)
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};

    use super::*;

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn a_post_from_our_own_page_passes() {
        let h = headers(&[
            (header::HOST, "127.0.0.1:8080"),
            (header::ORIGIN, "http://127.0.0.1:8080"),
        ]);
        assert!(same_origin(&h));
        let h = headers(&[
            (header::HOST, "shop.example"),
            (header::REFERER, "https://shop.example/tickets/1?x=1"),
        ]);
        assert!(same_origin(&h));
    }

    #[test]
    fn a_post_from_elsewhere_or_from_nowhere_is_refused() {
        let h = headers(&[
            (header::HOST, "127.0.0.1:8080"),
            (header::ORIGIN, "http://evil.example"),
        ]);
        assert!(!same_origin(&h));
        let h = headers(&[
            (header::HOST, "127.0.0.1:8080"),
            (header::ORIGIN, "http://127.0.0.1:9999"),
        ]);
        assert!(!same_origin(&h));
        let h = headers(&[(header::HOST, "127.0.0.1:8080"), (header::ORIGIN, "null")]);
        assert!(!same_origin(&h));
        let h = headers(&[
            (header::HOST, "a.example"),
            (header::REFERER, "http://a.example@evil.example/"),
        ]);
        assert!(!same_origin(&h));
        assert!(!same_origin(&headers(&[(header::HOST, "127.0.0.1:8080")])));
    }
}
