//! Refund an order (operators).

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ticketing_common::{ApiError, Json, error::ErrorBody, session::RequireOperator};
use ticketing_events::Cents;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    app::Payments,
    domain::parse_order_id,
    flows::{self, RefundError},
};

/// The order to refund.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundInput {
    /// The id of a complete order.
    #[schema(required = true, value_type = String, format = Uuid)]
    pub order_id: Option<Value>,
}

/// The refund: `{id, orderId, amount}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundView {
    pub id: Uuid,
    pub order_id: Uuid,
    /// In the units of a price, e.g. `19.99`.
    #[schema(value_type = f64, example = 19.99)]
    pub amount: Cents,
}

/// Refunds a complete order in full through the provider, once: the order becomes
/// `refunded` and its ticket goes back on sale. Operators only (`ADMIN_EMAILS`).
#[utoipa::path(post, path = "/api/payments/refunds", tag = "payments", request_body = RefundInput,
    responses(
        (status = 201, description = "Refunded", body = RefundView),
        (status = 400, description = "orderId missing or not an order id", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "Unknown order", body = ErrorBody),
        (status = 409, description = "Not complete, already refunded or being refunded, or the provider refused (its message)", body = ErrorBody),
        (status = 503, description = "The provider did not answer; asking again is safe", body = ErrorBody),
    ))]
pub async fn refund_order(
    RequireOperator(operator): RequireOperator,
    State(app): State<Payments>,
    Json(input): Json<RefundInput>,
) -> Result<(StatusCode, Json<RefundView>), ApiError> {
    let order_id = parse_order_id(input.order_id.as_ref().unwrap_or(&Value::Null))
        .map_err(|message| ApiError::field("orderId", message))?;
    let refunded = flows::refund_order(&app, (operator.id, &operator.email), order_id)
        .await
        .map_err(|e| match e {
            RefundError::NotFound => ApiError::not_found("Order"),
            e @ (RefundError::NotComplete(_)
            | RefundError::AlreadyRefunded
            | RefundError::InProgress
            | RefundError::Refused(_)) => ApiError::Conflict(e.to_string()),
            e @ RefundError::Unavailable(_) => ApiError::Unavailable(e.to_string()),
            RefundError::Unexpected(e) => ApiError::Unexpected(e),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(RefundView {
            id: refunded.id,
            order_id: refunded.order_id,
            amount: Cents(refunded.amount_cents),
        }),
    ))
}
