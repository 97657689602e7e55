//! Cross-site request forgery guard for the form posts.
//!
//! The session cookie is `SameSite=Lax`, which already keeps it off most cross-site posts;
//! this checks the browser's own word on where a form came from as well. A state-changing
//! request (anything but GET, HEAD and OPTIONS) must carry an `Origin`, or failing that a
//! `Referer`, whose scheme, host and port are the request's own (the scheme as
//! [`Forwarding::scheme`] tells it, the host from `Host`); otherwise it gets a plain page and
//! nothing happens. An `http://` page of the same host cannot post to the `https://` site.
//! Only the web pages are wrapped: the JSON API is not a form target.

use axum::{
    extract::Request,
    http::{Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{api::Forwarding, pages::message_page};

/// Refuses a state-changing request that did not come from one of our own pages.
pub async fn check_origin(request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let peer = ticketing_common::forwarded::peer(request.extensions());
    let scheme = request
        .extensions()
        .get::<Forwarding>()
        .cloned()
        .unwrap_or_default()
        .scheme(peer, request.headers());
    if same_origin(request.headers(), scheme) {
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

/// Whether `Origin` (or `Referer` without one) names the scheme (`http` or `https`) and host
/// the request was sent to.
pub fn same_origin(headers: &axum::http::HeaderMap, scheme: &str) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let source = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|h| h.to_str().ok());
    source
        .and_then(origin)
        .is_some_and(|(their_scheme, authority)| {
            their_scheme == scheme && authority.eq_ignore_ascii_case(host)
        })
}

/// The path of the page on this site a request came from, per its `Referer` (our pages send
/// it to ourselves: `Referrer-Policy: same-origin`); `None` without one or from elsewhere.
pub fn referring_page(headers: &axum::http::HeaderMap) -> Option<&str> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let referer = headers.get(header::REFERER)?.to_str().ok()?;
    let (_, authority) = origin(referer)?;
    if !authority.eq_ignore_ascii_case(host) {
        return None;
    }
    let (_, after_scheme) = referer.split_once("://")?;
    let path = &after_scheme[authority.len()..];
    let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
    path.starts_with('/').then_some(path)
}

/// The scheme and `host[:port]` of an absolute http(s) URL; `None` for anything else
/// (`null`, relative).
fn origin(url: &str) -> Option<(&'static str, &str)> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        ("http", rest)
    } else {
        ("https", url.strip_prefix("https://")?)
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    (!authority.is_empty() && !authority.contains('@')).then_some((scheme, authority))
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
        assert!(same_origin(&h, "http"));
        let h = headers(&[
            (header::HOST, "shop.example"),
            (header::REFERER, "https://shop.example/tickets/1?x=1"),
        ]);
        assert!(same_origin(&h, "https"));
    }

    #[test]
    fn a_post_from_the_same_host_over_another_scheme_is_refused() {
        let h = headers(&[
            (header::HOST, "shop.example"),
            (header::ORIGIN, "http://shop.example"),
        ]);
        assert!(!same_origin(&h, "https"));
        let h = headers(&[
            (header::HOST, "shop.example"),
            (header::REFERER, "https://shop.example/sell"),
        ]);
        assert!(!same_origin(&h, "http"));
    }

    #[test]
    fn the_scheme_comes_from_a_trusted_proxy_or_from_how_the_site_is_served() {
        let proxy: std::net::IpAddr = "10.0.0.9".parse().unwrap();
        let stranger: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        let forwarding = Forwarding {
            proxies: ticketing_common::forwarded::Proxies::new(vec!["10.0.0.0/8".parse().unwrap()]),
            token: None,
            https: false,
        };
        let h = headers(&[(
            header::HeaderName::from_static("x-forwarded-proto"),
            "https",
        )]);
        assert_eq!(forwarding.scheme(Some(proxy), &h), "https");
        assert_eq!(forwarding.scheme(Some(stranger), &h), "http");
        let secure = Forwarding {
            https: true,
            ..forwarding
        };
        assert_eq!(secure.scheme(Some(stranger), &HeaderMap::new()), "https");
    }

    #[test]
    fn a_post_from_elsewhere_or_from_nowhere_is_refused() {
        let h = headers(&[
            (header::HOST, "127.0.0.1:8080"),
            (header::ORIGIN, "http://evil.example"),
        ]);
        assert!(!same_origin(&h, "http"));
        let h = headers(&[
            (header::HOST, "127.0.0.1:8080"),
            (header::ORIGIN, "http://127.0.0.1:9999"),
        ]);
        assert!(!same_origin(&h, "http"));
        let h = headers(&[(header::HOST, "127.0.0.1:8080"), (header::ORIGIN, "null")]);
        assert!(!same_origin(&h, "http"));
        let h = headers(&[
            (header::HOST, "a.example"),
            (header::REFERER, "http://a.example@evil.example/"),
        ]);
        assert!(!same_origin(&h, "http"));
        assert!(!same_origin(
            &headers(&[(header::HOST, "127.0.0.1:8080")]),
            "http"
        ));
    }
}
