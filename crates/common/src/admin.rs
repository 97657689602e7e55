//! What every service shows its operators, under its own prefix (`/api/orders/admin/...`):
//! `GET <prefix>/admin/status` (its outbox backlog, its JetStream consumers' pending and
//! redelivered counts, its parked events and the latest operator actions) and
//! `POST <prefix>/admin/parked/:id/replay`. Operators only (`ADMIN_EMAILS`): 401 anonymous,
//! 403 others.
//!
//! Every operator action (a replay here; a refund, a job retried, ...) is recorded with who,
//! what and when in the acting service's own store ([`ActionLog`]): a table made with the
//! service's schema, or a capped list in the queue Redis for expiration.

use crate::redis::Redis;
use anyhow::Context;
use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    Json,
    bus::{
        Bus, consumer_name,
        listener::Subscription,
        parked::{self, Parking, Replayed},
    },
    error::{ApiError, ErrorBody},
    session::RequireOperator,
};

/// Actions kept and shown: the latest this many.
const ACTIONS_SHOWN: i64 = 100;
/// Parked events shown in the status (the oldest first); `ticketing events parked` lists all.
const PARKED_SHOWN: usize = 200;

/// Where a service records what operators did.
#[derive(Clone)]
pub enum ActionLog {
    /// The `operator_actions` table of the service's database.
    Postgres(PgPool),
    /// A list in Redis, newest first, capped at [`ACTIONS_SHOWN`] × 10 entries.
    Redis { redis: Redis, key: String },
}

impl std::fmt::Debug for ActionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActionLog::Postgres(_) => f.write_str("ActionLog::Postgres"),
            ActionLog::Redis { key, .. } => write!(f, "ActionLog::Redis({key})"),
        }
    }
}

/// One thing an operator did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct OperatorAction {
    /// The operator's user id (the nil id for the command line, which has no session).
    pub operator_id: Uuid,
    /// The operator's e-mail as their session named it (`null` for actions recorded before
    /// it was kept).
    pub operator_email: Option<String>,
    /// `refund`, `replay`, `retry`, `promote`, `discard`.
    pub action: String,
    /// What it was done to: an order id, a parked event id, a job id.
    pub target: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
}

/// The `operator_actions` table, made beside every service's own schema.
pub(crate) const SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS operator_actions (
    id          bigserial PRIMARY KEY,
    operator_id uuid NOT NULL,
    action      text NOT NULL,
    target      text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE operator_actions ADD COLUMN IF NOT EXISTS operator_email text;
";

impl ActionLog {
    /// Records that `operator` (id, e-mail) did `action` to `target`, now.
    pub async fn record(
        &self,
        (operator, email): (Uuid, &str),
        action: &str,
        target: &str,
    ) -> anyhow::Result<()> {
        tracing::info!(%operator, email, action, target, "operator action");
        match self {
            ActionLog::Postgres(pool) => {
                sqlx::query(
                    "INSERT INTO operator_actions (operator_id, operator_email, action, target)
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(operator)
                .bind(email)
                .bind(action)
                .bind(target)
                .execute(pool)
                .await
                .context("cannot record the operator's action")?;
            }
            ActionLog::Redis { redis, key } => {
                let entry = serde_json::to_string(&OperatorAction {
                    operator_id: operator,
                    operator_email: Some(email.to_owned()),
                    action: action.to_owned(),
                    target: target.to_owned(),
                    at: OffsetDateTime::now_utc(),
                })?;
                let _: () = redis::pipe()
                    .lpush(key, entry)
                    .ltrim(key, 0, (ACTIONS_SHOWN * 10 - 1) as isize)
                    .query_async(&mut redis.clone())
                    .await
                    .context("cannot record the operator's action")?;
            }
        }
        Ok(())
    }

    /// The latest actions, newest first.
    pub async fn latest(&self, limit: i64) -> anyhow::Result<Vec<OperatorAction>> {
        match self {
            ActionLog::Postgres(pool) => sqlx::query_as(
                "SELECT operator_id, operator_email, action, target, at FROM operator_actions
                 ORDER BY id DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await
            .context("cannot read operator actions"),
            ActionLog::Redis { redis, key } => {
                let entries: Vec<String> = redis::cmd("LRANGE")
                    .arg(key)
                    .arg(0)
                    .arg(limit - 1)
                    .query_async(&mut redis.clone())
                    .await
                    .context("cannot read operator actions")?;
                entries
                    .iter()
                    .map(|entry| serde_json::from_str(entry).map_err(Into::into))
                    .collect()
            }
        }
    }
}

/// What a service's operations routes need.
#[derive(Debug, Clone)]
pub struct Operations {
    pub service: &'static str,
    /// The bus its consumers read (`None`: it reads no events).
    pub bus: Option<Bus>,
    /// The service's database, whose outbox backlog is shown (`None`: it has no outbox).
    pub outbox: Option<PgPool>,
    pub parking: Option<Parking>,
    pub subscriptions: Vec<Subscription>,
    pub actions: ActionLog,
}

/// A JetStream consumer of the service: how far behind it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ConsumerStatus {
    pub name: String,
    /// Messages not yet delivered plus delivered but not yet acknowledged.
    pub pending: u64,
    /// Messages delivered more than once and not yet acknowledged.
    pub redelivered: u64,
}

/// A parked event, as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParkedView {
    pub id: Uuid,
    pub subject: String,
    pub error: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub parked_at: OffsetDateTime,
}

/// `GET <prefix>/admin/status`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    pub service: String,
    /// Events written but not yet published.
    pub outbox_backlog: i64,
    pub consumers: Vec<ConsumerStatus>,
    /// The oldest parked events (at most 200).
    pub parked: Vec<ParkedView>,
    /// The latest operator actions in this service, newest first.
    pub actions: Vec<OperatorAction>,
}

/// `POST <prefix>/admin/parked/:id/replay`: applied.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReplayView {
    /// The parked event's id.
    pub id: Uuid,
    /// `applied`.
    pub outcome: &'static str,
}

impl Operations {
    /// The service's status now.
    pub async fn status(&self) -> anyhow::Result<ServiceStatus> {
        let outbox_backlog = match &self.outbox {
            Some(pool) => sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
                .fetch_one(pool)
                .await
                .context("cannot count the outbox")?,
            None => 0,
        };
        let mut consumers = Vec::new();
        if let Some(bus) = self.bus.as_ref().filter(|_| !self.subscriptions.is_empty()) {
            let stream = bus
                .jetstream()
                .get_stream(bus.stream_name())
                .await
                .context("cannot reach the stream")?;
            for subscription in &self.subscriptions {
                let name = consumer_name(self.service, subscription.subject());
                // A consumer not made yet (its listener has not started) has nothing pending.
                let (pending, redelivered) = match stream.consumer_info(&name).await {
                    Ok(info) => (
                        info.num_pending + info.num_ack_pending as u64,
                        info.num_redelivered as u64,
                    ),
                    Err(_) => (0, 0),
                };
                consumers.push(ConsumerStatus {
                    name,
                    pending,
                    redelivered,
                });
            }
        }
        let parked = match &self.parking {
            Some(parking) => parking
                .list()
                .await?
                .into_iter()
                .take(PARKED_SHOWN)
                .map(|event| ParkedView {
                    id: event.id,
                    subject: event.subject,
                    error: event.error,
                    parked_at: event.parked_at,
                })
                .collect(),
            None => Vec::new(),
        };
        Ok(ServiceStatus {
            service: self.service.to_owned(),
            outbox_backlog,
            consumers,
            parked,
            actions: self.actions.latest(ACTIONS_SHOWN).await?,
        })
    }
}

/// The operations routes under `prefix` (`/api/orders`). Every service serves the same
/// handlers, so their OpenAPI operation ids are made unique with the service's name
/// (`orders_status`, `orders_replay`).
pub fn routes(prefix: &str, operations: Operations) -> OpenApiRouter {
    let service = operations.service;
    let routes = OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(replay))
        .with_state(operations);
    let mut routes = OpenApiRouter::new().nest(prefix, routes);
    for item in routes.get_openapi_mut().paths.paths.values_mut() {
        for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
            if let Some(id) = &operation.operation_id {
                operation.operation_id = Some(format!("{service}_{id}"));
            }
        }
    }
    routes
}

/// The service's outbox, consumers, parked events and latest operator actions. Operators
/// only.
#[utoipa::path(get, path = "/admin/status", tag = "operations",
    responses(
        (status = 200, body = ServiceStatus),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
    ))]
async fn status(
    RequireOperator(_): RequireOperator,
    State(operations): State<Operations>,
) -> Result<Json<ServiceStatus>, ApiError> {
    Ok(Json(operations.status().await?))
}

/// Applies a parked event again through the service's own handler; it is forgotten once
/// applied. Operators only; recorded.
#[utoipa::path(post, path = "/admin/parked/{id}/replay", tag = "operations",
    params(("id" = Uuid, Path, description = "The parked event's id")),
    responses(
        (status = 200, description = "Applied", body = ReplayView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such parked event", body = ErrorBody),
        (status = 409, description = "Refused again (the new error), or no handler reads its subject any more", body = ErrorBody),
    ))]
async fn replay(
    RequireOperator(operator): RequireOperator,
    State(operations): State<Operations>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<ReplayView>), ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found("Parked event"))?;
    let Some(parking) = &operations.parking else {
        return Err(ApiError::not_found("Parked event"));
    };
    let event = parking
        .list()
        .await?
        .into_iter()
        .find(|event| event.id == id)
        .ok_or_else(|| ApiError::not_found("Parked event"))?;
    operations
        .actions
        .record(
            (operator.id, &operator.email),
            "replay",
            &format!("{} {}", event.subject, id),
        )
        .await?;
    match parked::replay(parking, &operations.subscriptions, &event).await? {
        Replayed::Applied => Ok((
            StatusCode::OK,
            Json(ReplayView {
                id,
                outcome: "applied",
            }),
        )),
        Replayed::Refused(error) => Err(ApiError::Conflict(format!(
            "The event was refused again: {error}"
        ))),
        Replayed::NoHandler => Err(ApiError::Conflict(format!(
            "This service no longer reads {} events",
            event.subject
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operations(service: &'static str) -> Operations {
        Operations {
            service,
            bus: None,
            outbox: None,
            parking: None,
            subscriptions: Vec::new(),
            actions: ActionLog::Postgres(
                PgPool::connect_lazy("postgres://nobody@127.0.0.1/none").expect("lazy pool"),
            ),
        }
    }

    #[tokio::test]
    async fn every_service_s_operations_have_their_own_paths_and_operation_ids() {
        let merged = routes("/api/orders", operations("orders"))
            .merge(routes("/api/queues", operations("expiration")));
        let openapi = merged.get_openapi();
        let paths: Vec<&String> = openapi.paths.paths.keys().collect();
        assert!(
            paths.contains(&&"/api/orders/admin/status".to_owned()),
            "{paths:?}"
        );
        assert!(
            paths.contains(&&"/api/queues/admin/parked/{id}/replay".to_owned()),
            "{paths:?}"
        );
        let mut ids: Vec<String> = openapi
            .paths
            .paths
            .values()
            .flat_map(|item| [&item.get, &item.post])
            .flatten()
            .filter_map(|operation| operation.operation_id.clone())
            .collect();
        ids.sort();
        assert_eq!(
            ids,
            [
                "expiration_replay",
                "expiration_status",
                "orders_replay",
                "orders_status"
            ]
        );
    }
}
