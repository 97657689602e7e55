//! Static assets, compiled into the binary: no CDN, nothing read from disk at run time.

use axum::{Router, http::header, routing::get};

use crate::pages::State;

const SITE_CSS: &str = include_str!("../assets/site.css");

pub fn router() -> Router<State> {
    Router::new().route(
        "/assets/site.css",
        get(|| async {
            (
                [
                    (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                    (header::CACHE_CONTROL, "public, max-age=3600"),
                ],
                SITE_CSS,
            )
        }),
    )
}
