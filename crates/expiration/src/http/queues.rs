//! The queue's counts and lateness.

use axum::extract::{RawQuery, State};
use serde::Serialize;
use ticketing_common::{ApiError, Json, error::ErrorBody, session::RequireOperator};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::{
    board::{ChartMinutes, Counts, LatenessPoint, LatenessSummary, QUEUE_NAME},
    queue::Queue,
};
use ticketing_common::http::query_pairs;

/// Jobs by state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CountsView {
    /// Scheduled and not claimed yet.
    pub delayed: u64,
    /// Claimed by a worker under a lease.
    pub active: u64,
    /// Failed too often; waiting for an operator (retry or discard).
    pub failed: u64,
    /// Fired since the queue was made.
    pub completed: u64,
}

impl From<Counts> for CountsView {
    fn from(counts: Counts) -> Self {
        CountsView {
            delayed: counts.delayed,
            active: counts.active,
            failed: counts.failed,
            completed: counts.completed,
        }
    }
}

/// A queue in the list: `{name, counts}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueSummaryView {
    #[schema(example = "expiration")]
    pub name: String,
    pub counts: CountsView,
}

/// How late jobs fired over the last 5 minutes, across every replica: from a job's due time
/// to JetStream acknowledging its `expiration.complete`. Percentiles are within 3.2% of the
/// true value; `null`s when no job fired.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LatenessView {
    pub p50_ms: Option<u64>,
    pub p99_ms: Option<u64>,
    pub max_ms: Option<u64>,
}

impl From<LatenessSummary> for LatenessView {
    fn from(lateness: LatenessSummary) -> Self {
        LatenessView {
            p50_ms: lateness.p50_ms,
            p99_ms: lateness.p99_ms,
            max_ms: lateness.max_ms,
        }
    }
}

/// One queue: `{name, counts, lateness}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueView {
    #[schema(example = "expiration")]
    pub name: String,
    pub counts: CountsView,
    pub lateness: LatenessView,
}

/// One minute of the lateness chart.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LatenessPointView {
    /// The start of the minute.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    /// `null` when no job fired in that minute.
    pub p50_ms: Option<u64>,
    pub p99_ms: Option<u64>,
    /// Jobs fired in that minute.
    pub count: u64,
}

impl From<LatenessPoint> for LatenessPointView {
    fn from(point: LatenessPoint) -> Self {
        LatenessPointView {
            at: point.at,
            p50_ms: point.lateness.p50_ms,
            p99_ms: point.lateness.p99_ms,
            count: point.lateness.count,
        }
    }
}

/// The chart's span.
#[allow(dead_code)] // Describes the query in the OpenAPI document; parsed by hand (a JSON 400).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LatenessParams {
    /// Minutes, 1–180, default 60: one point each, the current minute last.
    #[param(minimum = 1, maximum = 180)]
    pub minutes: Option<u32>,
}

/// The queues and their counts. Operators only.
#[utoipa::path(get, path = "/api/queues", tag = "queues",
    responses(
        (status = 200, body = [QueueSummaryView]),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
    ))]
pub async fn list_queues(
    RequireOperator(_): RequireOperator,
    State(queue): State<Queue>,
) -> Result<Json<Vec<QueueSummaryView>>, ApiError> {
    let counts = queue.counts().await?;
    Ok(Json(vec![QueueSummaryView {
        name: QUEUE_NAME.to_owned(),
        counts: counts.into(),
    }]))
}

/// The expiration queue: its counts and how late its jobs fired over the last 5 minutes.
/// Operators only.
#[utoipa::path(get, path = "/api/queues/expiration", tag = "queues",
    responses(
        (status = 200, body = QueueView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
    ))]
pub async fn show_queue(
    RequireOperator(_): RequireOperator,
    State(queue): State<Queue>,
) -> Result<Json<QueueView>, ApiError> {
    let (counts, lateness) = tokio::try_join!(queue.counts(), queue.lateness())?;
    Ok(Json(QueueView {
        name: QUEUE_NAME.to_owned(),
        counts: counts.into(),
        lateness: lateness.into(),
    }))
}

/// Lateness one point a minute, oldest first, for the chart. Operators only.
#[utoipa::path(get, path = "/api/queues/expiration/lateness", tag = "queues",
    params(LatenessParams),
    responses(
        (status = 200, body = [LatenessPointView]),
        (status = 400, description = "minutes is not 1–180", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
    ))]
pub async fn queue_lateness(
    RequireOperator(_): RequireOperator,
    State(queue): State<Queue>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<LatenessPointView>>, ApiError> {
    let mut minutes = ChartMinutes::default();
    for (key, value) in query_pairs(query.as_deref()) {
        if key == "minutes" {
            minutes = value
                .parse()
                .map_err(|message| ApiError::field("minutes", message))?;
        }
    }
    let chart = queue.lateness_chart(minutes).await?;
    Ok(Json(chart.into_iter().map(Into::into).collect()))
}
