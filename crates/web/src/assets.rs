//! Static assets, compiled into the binary: no CDN, nothing read from disk at run time. The
//! pages' scripts live here rather than inline, so the Content-Security-Policy can forbid
//! inline script outright.

use axum::{Router, http::header, routing::get};

use crate::pages::State;

const SITE_CSS: &str = include_str!("../assets/site.css");
const ADMIN_CSS: &str = include_str!("../assets/admin.css");
const EVENTS_CSS: &str = include_str!("../assets/events.css");
const COUNTDOWN_JS: &str = include_str!("../assets/countdown.js");
const STRIPE_CARD_JS: &str = include_str!("../assets/stripe-card.js");
const LOCAL_TIME_JS: &str = include_str!("../assets/local-time.js");
const EVENT_FORM_JS: &str = include_str!("../assets/event-form.js");

/// One asset with its type, cached for an hour.
fn asset(content_type: &'static str, body: &'static str) -> axum::routing::MethodRouter<State> {
    get(move || async move {
        (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            body,
        )
    })
}

pub fn router() -> Router<State> {
    Router::new()
        .route(
            "/assets/site.css",
            asset("text/css; charset=utf-8", SITE_CSS),
        )
        .route(
            "/assets/admin.css",
            asset("text/css; charset=utf-8", ADMIN_CSS),
        )
        .route(
            "/assets/events.css",
            asset("text/css; charset=utf-8", EVENTS_CSS),
        )
        .route(
            "/assets/countdown.js",
            asset("text/javascript; charset=utf-8", COUNTDOWN_JS),
        )
        .route(
            "/assets/local-time.js",
            asset("text/javascript; charset=utf-8", LOCAL_TIME_JS),
        )
        .route(
            "/assets/event-form.js",
            asset("text/javascript; charset=utf-8", EVENT_FORM_JS),
        )
        .route(
            "/assets/stripe-card.js",
            asset("text/javascript; charset=utf-8", STRIPE_CARD_JS),
        )
}
