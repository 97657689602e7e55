//! The security headers of every page: a Content-Security-Policy that allows no inline script
//! and no framing, `nosniff`, a referrer policy that keeps our URLs (order ids) to ourselves,
//! and `Cache-Control: no-store` on every page (they show a visitor's orders and e-mail), not
//! on the static assets, which set their own.

use axum::{
    extract::Request,
    http::{HeaderValue, header},
    middleware::Next,
    response::Response,
};

/// The policy. Stripe's script, frames and API are allowed only when the order page uses
/// Stripe's card element (`STRIPE_PUBLISHABLE_KEY`).
pub fn content_security_policy(stripe: bool) -> HeaderValue {
    let (script, frame, connect) = if stripe {
        (
            "'self' https://js.stripe.com",
            "https://js.stripe.com https://hooks.stripe.com",
            "'self' https://api.stripe.com",
        )
    } else {
        ("'self'", "'none'", "'self'")
    };
    let policy = format!(
        "default-src 'self'; script-src {script}; style-src 'self'; img-src 'self' data:; \
         connect-src {connect}; frame-src {frame}; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&policy).expect("a policy is a valid header value")
}

/// Adds the headers to a response of the pages.
pub async fn secure(policy: HeaderValue, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_forbids_inline_script_and_framing_and_allows_stripe_only_when_used() {
        let plain = content_security_policy(false);
        let plain = plain.to_str().unwrap();
        assert!(plain.contains("script-src 'self';"), "{plain}");
        assert!(!plain.contains("unsafe-inline"), "{plain}");
        assert!(plain.contains("frame-ancestors 'none'"), "{plain}");
        assert!(!plain.contains("stripe"), "{plain}");
        let stripe = content_security_policy(true);
        let stripe = stripe.to_str().unwrap();
        assert!(
            stripe.contains("script-src 'self' https://js.stripe.com;"),
            "{stripe}"
        );
        assert!(
            stripe.contains("frame-src https://js.stripe.com"),
            "{stripe}"
        );
    }
}
