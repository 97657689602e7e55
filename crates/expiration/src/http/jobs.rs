//! The jobs of one state, and what operators do to one job.

use axum::{
    extract::{RawQuery, State},
    http::StatusCode,
};
use serde::Serialize;
use ticketing_common::{
    ApiError, Json, PathId,
    error::{ErrorBody, ErrorItem},
    session::RequireOperator,
};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    board::{self, Acted, ActionError, JobAction, JobInfo, JobState, Limit, Offset},
    queue::Queue,
};
use ticketing_common::http::query_pairs;

/// A job: `{id, orderId, dueAt, attempts, lastError, failedAt}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    /// The job's id: its order's id.
    pub id: Uuid,
    pub order_id: Uuid,
    /// When it is due (delayed), was due when claimed (active), or was due at its last try
    /// (failed).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_at: Option<OffsetDateTime>,
    /// Failed attempts so far (an operator's retry starts again from 0).
    pub attempts: u32,
    /// Why its last attempt failed; `null` if none did.
    pub last_error: Option<String>,
    /// When its last attempt failed (a failed job: when it gave up).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub failed_at: Option<OffsetDateTime>,
}

impl From<JobInfo> for JobView {
    fn from(job: JobInfo) -> Self {
        JobView {
            id: job.order_id,
            order_id: job.order_id,
            due_at: job.due_at,
            attempts: job.attempts,
            last_error: job.last_error,
            failed_at: job.failed_at,
        }
    }
}

/// A job made due: `{id, orderId, dueAt}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RescheduledView {
    pub id: Uuid,
    pub order_id: Uuid,
    /// Now, or the earlier due time of a job already overdue.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub due_at: OffsetDateTime,
}

/// A state jobs are listed in.
#[allow(dead_code)] // Describes the query in the OpenAPI document; `JobState` parses it.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StateParam {
    Delayed,
    Active,
    Failed,
}

/// Which jobs.
#[allow(dead_code)] // Describes the query in the OpenAPI document; parsed by hand (a JSON 400).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobsParams {
    /// `delayed` (scheduled, not claimed yet), `active` (claimed by a worker) or `failed`.
    #[param(inline)]
    pub state: StateParam,
    /// 1–500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Jobs to skip, 0–1,000,000, default 0.
    #[param(minimum = 0, maximum = 1000000)]
    pub offset: Option<u32>,
}

/// Every problem with the query at once, each naming its field.
fn parse_jobs_query(query: Option<&str>) -> Result<(JobState, Limit, Offset), ApiError> {
    let (mut state, mut limit, mut offset) = (None, Limit::default(), Offset::default());
    let mut errors = Vec::new();
    for (key, value) in query_pairs(query) {
        match key {
            "state" => match value.parse() {
                Ok(parsed) => state = Some(parsed),
                Err(message) => errors.push(ErrorItem::field("state", message)),
            },
            "limit" => match value.parse() {
                Ok(parsed) => limit = parsed,
                Err(message) => errors.push(ErrorItem::field("limit", message)),
            },
            "offset" => match value.parse() {
                Ok(parsed) => offset = parsed,
                Err(message) => errors.push(ErrorItem::field("offset", message)),
            },
            _ => {}
        }
    }
    if state.is_none() && !errors.iter().any(|e| e.field.as_deref() == Some("state")) {
        errors.push(ErrorItem::field(
            "state",
            "State is required: delayed, active or failed",
        ));
    }
    match state {
        Some(state) if errors.is_empty() => Ok((state, limit, offset)),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// The jobs in one state, earliest first: by due time (delayed), lease deadline (active) or
/// the time they gave up (failed). Operators only.
#[utoipa::path(get, path = "/api/queues/expiration/jobs", tag = "queues",
    params(JobsParams),
    responses(
        (status = 200, body = [JobView]),
        (status = 400, description = "state missing or unknown, or limit or offset out of range", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
    ))]
pub async fn list_jobs(
    RequireOperator(_): RequireOperator,
    State(queue): State<Queue>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<JobView>>, ApiError> {
    let (state, limit, offset) = parse_jobs_query(query.as_deref())?;
    let jobs = queue.jobs(state, limit, offset).await?;
    Ok(Json(jobs.into_iter().map(Into::into).collect()))
}

/// Does `action` to the job in the path, for `operator`.
async fn act(
    queue: &Queue,
    operator: (Uuid, &str),
    action: JobAction,
    id: PathId,
) -> Result<Acted, ApiError> {
    let id = id.or_not_found("Job")?;
    board::act(queue, operator, action, id)
        .await
        .map_err(|error| match error {
            ActionError::NotFound => ApiError::not_found("Job"),
            ActionError::WrongState(message) => ApiError::Conflict(message),
            ActionError::Unexpected(error) => ApiError::Unexpected(error),
        })
}

fn rescheduled(acted: Acted) -> Result<Json<RescheduledView>, ApiError> {
    let due_at = acted
        .due_at
        .ok_or_else(|| anyhow::anyhow!("a rescheduled job without a due time"))?;
    Ok(Json(RescheduledView {
        id: acted.order_id,
        order_id: acted.order_id,
        due_at,
    }))
}

/// Schedules a failed job again, due now, with a fresh set of attempts (its last error is
/// kept). Operators only; recorded.
#[utoipa::path(post, path = "/api/queues/expiration/jobs/{id}/retry", tag = "queues",
    params(("id" = Uuid, Path, description = "The job's id: its order's id")),
    responses(
        (status = 200, description = "Due now", body = RescheduledView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job is not failed", body = ErrorBody),
    ))]
pub async fn retry_job(
    RequireOperator(operator): RequireOperator,
    State(queue): State<Queue>,
    id: PathId,
) -> Result<Json<RescheduledView>, ApiError> {
    rescheduled(act(&queue, (operator.id, &operator.email), JobAction::Retry, id).await?)
}

/// Fires a delayed job now. Operators only; recorded.
#[utoipa::path(post, path = "/api/queues/expiration/jobs/{id}/promote", tag = "queues",
    params(("id" = Uuid, Path, description = "The job's id: its order's id")),
    responses(
        (status = 200, description = "Due now", body = RescheduledView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job is not delayed", body = ErrorBody),
    ))]
pub async fn promote_job(
    RequireOperator(operator): RequireOperator,
    State(queue): State<Queue>,
    id: PathId,
) -> Result<Json<RescheduledView>, ApiError> {
    rescheduled(
        act(
            &queue,
            (operator.id, &operator.email),
            JobAction::Promote,
            id,
        )
        .await?,
    )
}

/// Drops a failed job for good: its order will not be expired by the queue (a redelivered
/// `order.created` does not bring it back). Operators only; recorded.
#[utoipa::path(delete, path = "/api/queues/expiration/jobs/{id}", tag = "queues",
    params(("id" = Uuid, Path, description = "The job's id: its order's id")),
    responses(
        (status = 204, description = "Discarded"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job is not failed", body = ErrorBody),
    ))]
pub async fn discard_job(
    RequireOperator(operator): RequireOperator,
    State(queue): State<Queue>,
    id: PathId,
) -> Result<StatusCode, ApiError> {
    act(
        &queue,
        (operator.id, &operator.email),
        JobAction::Discard,
        id,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(query: &str) -> Vec<String> {
        match parse_jobs_query(Some(query)) {
            Err(ApiError::Validation(items)) => items.into_iter().filter_map(|i| i.field).collect(),
            other => panic!("{query}: {other:?}"),
        }
    }

    #[test]
    fn the_jobs_query_names_each_bad_field() {
        assert_eq!(fields(""), ["state"]);
        assert_eq!(fields("state=done"), ["state"]);
        assert_eq!(fields("state=failed&limit=0&offset=x"), ["limit", "offset"]);
        assert_eq!(fields("limit=9999"), ["limit", "state"]);
        let (state, limit, offset) =
            parse_jobs_query(Some("state=active&limit=7&offset=3")).unwrap();
        assert_eq!((state, limit.get(), offset.get()), (JobState::Active, 7, 3));
        let (_, limit, offset) = parse_jobs_query(Some("state=failed")).unwrap();
        assert_eq!((limit.get(), offset.get()), (50, 0));
    }
}
