//! Auth's HTTP API, `/api/users/*`, as `CONTRACT.md` (Users, Session) describes it.

mod users;

use std::sync::Arc;

use axum::middleware;
use sqlx::PgPool;
use ticketing_common::{
    ratelimit::{self, RateLimiter, SharedLimit},
    session::SessionKeys,
};
use utoipa_axum::{router::OpenApiRouter, routes};

/// What auth's handlers share.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub keys: Arc<SessionKeys>,
    /// Failed sign-ins per account; `None`: unlimited.
    pub failed_signins: Option<SharedLimit>,
}

/// The routes, with sign-in and sign-up behind the per-address rate limit.
pub fn router(state: AppState, limiter: RateLimiter) -> OpenApiRouter {
    let limited = OpenApiRouter::new()
        .routes(routes!(users::signup))
        .routes(routes!(users::signin))
        .route_layer(middleware::from_fn_with_state(limiter, ratelimit::limit));
    OpenApiRouter::new()
        .routes(routes!(users::signout))
        .routes(routes!(users::current_user))
        .merge(limited)
        .with_state(state)
}
