//! Auth's HTTP API, `/api/users/*`, as `CONTRACT.md` (Users, Session) describes it.

mod users;

use axum::middleware;
use ticketing_common::ratelimit::{self, RateLimiter};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::Auth;

/// The routes, with sign-in and sign-up behind the per-address rate limit.
pub fn router(auth: Auth, limiter: RateLimiter) -> OpenApiRouter {
    let limited = OpenApiRouter::new()
        .routes(routes!(users::signup))
        .routes(routes!(users::signin))
        .route_layer(middleware::from_fn_with_state(limiter, ratelimit::limit));
    OpenApiRouter::new()
        .routes(routes!(users::signout))
        .routes(routes!(users::current_user))
        .merge(limited)
        .with_state(auth)
}
