//! The one error type handlers return, rendered as the contract's body:
//! `{"errors": [{"message": "…", "field": "…"}]}`.
//!
//! Unexpected errors answer a plain 500 body; their cause chain is logged once, here.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

/// One entry of the error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorItem {
    /// Human-readable.
    pub message: String,
    /// The input the message is about, on validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ErrorItem {
    pub fn new(message: impl Into<String>) -> Self {
        ErrorItem {
            message: message.into(),
            field: None,
        }
    }

    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorItem {
            message: message.into(),
            field: Some(field.into()),
        }
    }
}

/// The error body every endpoint answers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    pub errors: Vec<ErrorItem>,
}

/// Outcomes a handler can answer with other than success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the input is invalid; one item per problem, with its field.
    #[error("validation failed")]
    Validation(Vec<ErrorItem>),
    /// 400 without a field: malformed JSON, wrong content type, failed sign-in.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid session, or the resource belongs to someone else.
    #[error("not authorized")]
    Unauthorized,
    /// 403: signed in, but the route is for operators only (`ADMIN_EMAILS`).
    #[error("This is for operators only")]
    Forbidden,
    /// 402: the payment provider declined.
    #[error("{0}")]
    PaymentRequired(String),
    /// 404: unknown resource or route.
    #[error("{0}")]
    NotFound(String),
    /// 405: a method the route does not take.
    #[error("Method not allowed on this route")]
    MethodNotAllowed,
    /// 408: the request's body did not arrive within the request timeout.
    #[error("The request's body did not arrive in time")]
    RequestTimeout,
    /// 409: a business rule refuses the request.
    #[error("{0}")]
    Conflict(String),
    /// 429: too many attempts.
    #[error("too many attempts")]
    TooManyRequests { retry_after_secs: u64 },
    /// 503: a dependency we need is unavailable; the client may retry.
    #[error("{0}")]
    Unavailable(String),
    /// 500: our own failure. The message is logged, never shown.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl ApiError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![ErrorItem::field(field, message)])
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::NotFound(format!("{what} not found"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::PaymentRequired(_) => StatusCode::PAYMENT_REQUIRED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn items(&self) -> Vec<ErrorItem> {
        match self {
            ApiError::Validation(items) if !items.is_empty() => items.clone(),
            ApiError::Validation(_) => vec![ErrorItem::new("Invalid request")],
            ApiError::Unauthorized => vec![ErrorItem::new("Not authorized")],
            ApiError::TooManyRequests { .. } => {
                vec![ErrorItem::new(
                    "Too many attempts, please wait a minute and try again",
                )]
            }
            ApiError::Unexpected(_) => vec![ErrorItem::new("Something went wrong on our side")],
            other => vec![ErrorItem::new(other.to_string())],
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::Unexpected(anyhow::Error::new(error).context("database query failed"))
    }
}

/// How long a client should wait before retrying a 503.
const RETRY_AFTER_UNAVAILABLE_SECS: u64 = 1;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let this = match self {
            // A dependency down, slow or saturated (the database pool exhausted, its
            // connection refused, Redis timing out): not broken, and worth a retry.
            ApiError::Unexpected(error) if is_transient(&error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "a dependency is unavailable; answering 503"
                );
                ApiError::Unavailable("The service is busy; please try again in a moment".into())
            }
            other => other,
        };
        let status = this.status();
        if let ApiError::Unexpected(error) = &this {
            tracing::error!(error = format!("{error:#}"), "request failed");
        }
        let mut response = (
            status,
            axum::Json(ErrorBody {
                errors: this.items(),
            }),
        )
            .into_response();
        let retry_after = match this {
            ApiError::TooManyRequests { retry_after_secs } => Some(retry_after_secs),
            ApiError::Unavailable(_) => Some(RETRY_AFTER_UNAVAILABLE_SECS),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}

/// Whether an error comes from a dependency that is down, slow or saturated (a database
/// connection lost or refused, a pool exhausted, a Redis or network timeout, a transaction
/// the database chose to abort), so the same work may succeed if simply tried again later.
/// Anything else (a constraint, a bug, a value that cannot be read) would fail again.
pub fn is_transient(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        if let Some(error) = cause.downcast_ref::<sqlx::Error>() {
            return match error {
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                    // Connection exceptions, resources, operator intervention (shutdown),
                    // system errors; serialization failures and deadlocks.
                    ["08", "53", "57", "58"]
                        .iter()
                        .any(|class| code.starts_with(class))
                        || code == "40001"
                        || code == "40P01"
                }),
                _ => false,
            };
        }
        if let Some(error) = cause.downcast_ref::<redis::RedisError>() {
            // Connection trouble, and a server that says "not now": loading, read-only (a
            // replica mid-failover), master down, try again, out of memory; and sentinels
            // that name no usable master yet (mid-failover).
            return error.is_io_error()
                || matches!(
                    error.kind(),
                    redis::ErrorKind::MasterNameNotFoundBySentinel
                        | redis::ErrorKind::NoValidReplicasFoundBySentinel
                )
                || error.is_timeout()
                || error.is_connection_dropped()
                || error.is_connection_refusal()
                || !matches!(error.retry_method(), redis::RetryMethod::NoRetry)
                || error.code() == Some("OOM");
        }
        cause.is::<std::io::Error>() || cause.is::<tokio::time::error::Elapsed>()
    })
}

/// Whether a database error is a unique-constraint violation (SQLSTATE 23505), optionally on a
/// given constraint: how "someone else got there first" is recognised without a racy pre-check.
pub fn is_unique_violation(error: &sqlx::Error, constraint: Option<&str>) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            db.code().as_deref() == Some("23505")
                && constraint.is_none_or(|name| db.constraint() == Some(name))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_outage_is_a_503_with_retry_after_and_a_bug_stays_a_500() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for outage in [
            anyhow::Error::new(sqlx::Error::PoolTimedOut),
            anyhow::Error::new(sqlx::Error::Io(refused)).context("database query failed"),
        ] {
            let response = ApiError::Unexpected(outage).into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(response.headers().contains_key("retry-after"));
        }
        let bug = ApiError::Unexpected(anyhow::anyhow!("a column that does not exist"));
        assert_eq!(
            bug.into_response().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn outages_are_transient_and_mistakes_are_not() {
        let pool = anyhow::Error::new(sqlx::Error::PoolTimedOut).context("cannot apply");
        assert!(is_transient(&pool));
        let io = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(is_transient(&io.context("reading")));
        let decode = anyhow::Error::new(sqlx::Error::RowNotFound);
        assert!(!is_transient(&decode));
        assert!(!is_transient(&anyhow::anyhow!("handler panicked")));
    }

    #[test]
    fn an_exhausted_pool_is_503_with_retry_after_not_500() {
        let error = anyhow::Error::new(sqlx::Error::PoolTimedOut)
            .context("database query failed")
            .context("cannot list tickets");
        let response = ApiError::Unexpected(error).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "1");
        let other = ApiError::Unexpected(anyhow::anyhow!("boom")).into_response();
        assert_eq!(other.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
