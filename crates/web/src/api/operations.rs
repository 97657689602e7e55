//! The operators' routes the console reads and acts through: each service's status and
//! parked-event replay, payments' attention list, and the expiration queue (its counts,
//! lateness, jobs and the actions on a job). All of them answer 401 anonymous and 403 to
//! anyone who is not an operator; the console only shows their answers.

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use uuid::Uuid;

use super::{Api, ApiFailure, Visitor};

/// A service the console reads, by its name and the API prefix its operations live under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    pub name: &'static str,
    pub prefix: &'static str,
}

/// Every service with operations routes, in the order the console shows them.
pub const SERVICES: [Service; 5] = [
    Service {
        name: "auth",
        prefix: "/api/users",
    },
    Service {
        name: "tickets",
        prefix: "/api/tickets",
    },
    Service {
        name: "orders",
        prefix: "/api/orders",
    },
    Service {
        name: "payments",
        prefix: "/api/payments",
    },
    Service {
        name: "expiration",
        prefix: "/api/queues",
    },
];

impl Service {
    /// The service called `name`, if there is one.
    pub fn named(name: &str) -> Option<Service> {
        SERVICES.into_iter().find(|s| s.name == name)
    }
}

/// `GET <prefix>/admin/status`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    pub service: String,
    #[serde(default)]
    pub outbox_backlog: i64,
    #[serde(default)]
    pub consumers: Vec<ConsumerStatus>,
    #[serde(default)]
    pub parked: Vec<Parked>,
    #[serde(default)]
    pub actions: Vec<OperatorAction>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConsumerStatus {
    pub name: String,
    pub pending: u64,
    pub redelivered: u64,
}

/// An event a service could not apply and set aside.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parked {
    pub id: Uuid,
    pub subject: String,
    pub error: String,
    #[serde(deserialize_with = "stamp")]
    pub parked_at: Option<OffsetDateTime>,
}

/// Something an operator did.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorAction {
    pub operator_id: Uuid,
    /// `null` for actions recorded before the e-mail was kept.
    #[serde(default)]
    pub operator_email: Option<String>,
    pub action: String,
    pub target: String,
    #[serde(deserialize_with = "stamp")]
    pub at: Option<OffsetDateTime>,
}

/// `GET /api/payments/admin/attention`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attention {
    #[serde(default)]
    pub unmatched_charges: Vec<UnmatchedCharge>,
    #[serde(default)]
    pub refused_refunds: Vec<RefusedRefund>,
}

/// Money taken that no payment holds.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnmatchedCharge {
    pub charge_id: String,
    pub order_id: Option<Uuid>,
    pub amount: Option<f64>,
    pub reason: String,
    #[serde(deserialize_with = "stamp")]
    pub recorded_at: Option<OffsetDateTime>,
}

/// A refund the provider refused: the buyer has not been paid back.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefusedRefund {
    pub id: Uuid,
    pub order_id: Uuid,
    pub amount: f64,
    pub reason: String,
    pub message: Option<String>,
    pub requested_by: Option<Uuid>,
    #[serde(deserialize_with = "stamp")]
    pub created_at: Option<OffsetDateTime>,
}

/// `GET /api/queues/expiration`.
#[derive(Debug, Clone, Deserialize)]
pub struct QueueStatus {
    pub name: String,
    pub counts: QueueCounts,
    pub lateness: Lateness,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct QueueCounts {
    pub delayed: u64,
    pub active: u64,
    pub failed: u64,
    pub completed: u64,
}

/// How late jobs fired over the last 5 minutes; `None` when nothing fired.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Lateness {
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// One minute of the lateness chart.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatenessPoint {
    #[serde(deserialize_with = "stamp")]
    pub at: Option<OffsetDateTime>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    #[serde(default)]
    pub count: u64,
}

/// A job of the expiration queue.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueJob {
    #[serde(deserialize_with = "id")]
    pub id: String,
    pub order_id: Option<Uuid>,
    #[serde(default, deserialize_with = "stamp")]
    pub due_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub attempts: u64,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default, deserialize_with = "stamp")]
    pub failed_at: Option<OffsetDateTime>,
}

/// The states a job can be listed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Delayed,
    Active,
    Failed,
}

impl JobState {
    pub const ALL: [JobState; 3] = [JobState::Delayed, JobState::Active, JobState::Failed];

    pub fn parse(state: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|s| s.as_str() == state)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Delayed => "delayed",
            JobState::Active => "active",
            JobState::Failed => "failed",
        }
    }
}

/// What an operator may do to one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobAction {
    /// A failed job runs again, due now.
    Retry,
    /// A delayed job fires now.
    Promote,
    /// A failed job is dropped.
    Discard,
}

/// A timestamp as RFC 3339 text or milliseconds since the epoch; `null` is `None`, and so is
/// text that is no time (the page then shows nothing rather than failing).
fn stamp<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<OffsetDateTime>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(text) => OffsetDateTime::parse(&text, &Rfc3339).ok(),
        Value::Number(ms) => ms.as_i64().and_then(|ms| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
        }),
        _ => None,
    })
}

/// An id given as text or as a number.
fn id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(text) => text,
        other => other.to_string(),
    })
}

const QUEUE: &str = "/api/queues/expiration";

impl Api {
    /// `GET <prefix>/admin/status` of one service.
    pub async fn service_status(
        &self,
        v: &Visitor,
        service: Service,
    ) -> Result<ServiceStatus, ApiFailure> {
        let path = format!("{}/admin/status", service.prefix);
        Ok(self.call(v, reqwest::Method::GET, &path, None).await?.body)
    }

    /// `POST <prefix>/admin/parked/:id/replay`: applies a parked event again.
    pub async fn replay(&self, v: &Visitor, service: Service, id: Uuid) -> Result<(), ApiFailure> {
        let path = format!("{}/admin/parked/{id}/replay", service.prefix);
        self.call::<Value>(v, reqwest::Method::POST, &path, None)
            .await?;
        Ok(())
    }

    /// `GET /api/payments/admin/attention`.
    pub async fn attention(&self, v: &Visitor) -> Result<Attention, ApiFailure> {
        let path = "/api/payments/admin/attention";
        Ok(self.call(v, reqwest::Method::GET, path, None).await?.body)
    }

    /// `GET /api/queues/expiration`: counts and recent lateness.
    pub async fn queue(&self, v: &Visitor) -> Result<QueueStatus, ApiFailure> {
        Ok(self.call(v, reqwest::Method::GET, QUEUE, None).await?.body)
    }

    /// `GET /api/queues/expiration/lateness?minutes=N`: one point a minute.
    pub async fn lateness(
        &self,
        v: &Visitor,
        minutes: u32,
    ) -> Result<Vec<LatenessPoint>, ApiFailure> {
        let path = format!("{QUEUE}/lateness?minutes={minutes}");
        Ok(self.call(v, reqwest::Method::GET, &path, None).await?.body)
    }

    /// `GET /api/queues/expiration/jobs?state=&limit=&offset=`, soonest first.
    pub async fn jobs(
        &self,
        v: &Visitor,
        state: JobState,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<QueueJob>, ApiFailure> {
        let path = format!(
            "{QUEUE}/jobs?state={}&limit={limit}&offset={offset}",
            state.as_str()
        );
        Ok(self.call(v, reqwest::Method::GET, &path, None).await?.body)
    }

    /// Retries, promotes or discards one job; `id` is one path segment (the pages accept
    /// only letters, digits, `-` and `_`).
    pub async fn job_action(
        &self,
        v: &Visitor,
        id: &str,
        action: JobAction,
    ) -> Result<(), ApiFailure> {
        let job = format!("{QUEUE}/jobs/{id}");
        let (method, path) = match action {
            JobAction::Retry => (reqwest::Method::POST, format!("{job}/retry")),
            JobAction::Promote => (reqwest::Method::POST, format!("{job}/promote")),
            JobAction::Discard => (reqwest::Method::DELETE, job),
        };
        self.call::<Value>(v, method, &path, None).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_text_or_milliseconds_and_anything_else_is_no_time() {
        let job: QueueJob = serde_json::from_value(serde_json::json!({
            "id": "j1", "orderId": null, "dueAt": "2026-03-01T12:00:00Z",
            "attempts": 2, "lastError": "NATS said no", "failedAt": 1772366400000_i64,
        }))
        .unwrap();
        let noon = OffsetDateTime::parse("2026-03-01T12:00:00Z", &Rfc3339).unwrap();
        assert_eq!(job.due_at, Some(noon));
        assert_eq!(job.failed_at, Some(noon));
        let job: QueueJob =
            serde_json::from_value(serde_json::json!({"id": 7, "dueAt": "soon"})).unwrap();
        assert_eq!((job.id.as_str(), job.due_at), ("7", None));
    }
}
