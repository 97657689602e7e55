//! Expiration's HTTP API, for operators only (`ADMIN_EMAILS`; 401 anonymous, 403 others,
//! before anything else about the request is looked at), as `CONTRACT.md` (Operations)
//! describes it. Both files call the [`crate::board`], as `ticketing queue` does:
//! - `queues`: `GET /api/queues`, `GET /api/queues/expiration` (counts and lateness) and
//!   `GET /api/queues/expiration/lateness` (the chart);
//! - `jobs`: `GET /api/queues/expiration/jobs` and the actions on one job (retry, promote,
//!   discard).
//!
//! The operators' status and parked-event replay under `/api/queues/admin` come from
//! `ticketing_common::admin`, added by [`crate::component`].

mod jobs;
mod queues;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::queue::Queue;

pub use jobs::{JobView, RescheduledView};
pub use queues::{CountsView, LatenessPointView, LatenessView, QueueSummaryView, QueueView};

pub fn router(queue: Queue) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(queues::list_queues))
        .routes(routes!(queues::show_queue))
        .routes(routes!(queues::queue_lateness))
        .routes(routes!(jobs::list_jobs))
        .routes(routes!(jobs::retry_job))
        .routes(routes!(jobs::promote_job))
        .routes(routes!(jobs::discard_job))
        .with_state(queue)
}
