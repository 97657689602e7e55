//! Pay for an order; read an order's payments.

use axum::{
    extract::{RawQuery, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ticketing_common::{
    ApiError, Json, RequireAuth,
    error::{ErrorBody, ErrorItem},
    http::query_pairs,
    session::Caller,
};
use ticketing_events::Cents;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    app::Payments,
    domain::{parse_order_id, parse_token},
    flows::{self, PayError, PayOutcome, PaymentRecord, RecordsError},
};

/// The order to pay and how.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentInput {
    /// The id of one of the caller's orders.
    #[schema(required = true, value_type = String, format = Uuid)]
    pub order_id: Option<Value>,
    /// A payment token: with Stripe a PaymentMethod id (`pm_...`) or card token (`tok_...`);
    /// with the development provider `tok_visa` (succeeds) or `tok_chargeDeclined`.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 255,
        pattern = r"^\s*[!-~]+\s*$", example = "tok_visa")]
    pub token: Option<Value>,
}

/// The payment: `{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PaymentReceipt {
    pub id: Uuid,
}

/// A payment as a receipt shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentView {
    pub id: Uuid,
    pub order_id: Uuid,
    /// A number with at most two decimals, e.g. `19.99`.
    #[schema(value_type = f64, example = 19.99)]
    pub amount: Cents,
    /// `succeeded`, `refunded`, `declined` or `pending`.
    #[schema(example = "succeeded")]
    pub status: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: time::OffsetDateTime,
    /// `null` when the provider does not say.
    #[schema(example = "visa")]
    pub card_brand: Option<String>,
    #[schema(example = "4242")]
    pub card_last4: Option<String>,
}

impl From<PaymentRecord> for PaymentView {
    fn from(record: PaymentRecord) -> Self {
        PaymentView {
            id: record.id,
            order_id: record.order_id,
            amount: Cents(record.amount_cents),
            status: record.status,
            created_at: record.created_at,
            card_brand: record.card_brand,
            card_last4: record.card_last4,
        }
    }
}

/// An order's payments (its receipt): for the order's owner and for operators.
#[utoipa::path(get, path = "/api/payments", tag = "payments",
    params(("orderId" = String, Query, format = Uuid, description = "The order's id")),
    responses(
        (status = 200, body = [PaymentView]),
        (status = 400, description = "orderId missing or not an order id", body = ErrorBody),
        (status = 401, description = "Not signed in, or neither the owner nor an operator", body = ErrorBody),
        (status = 404, description = "Unknown order", body = ErrorBody),
    ))]
pub async fn list_payments(
    caller: Caller,
    State(app): State<Payments>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<PaymentView>>, ApiError> {
    let order_id = query_pairs(query.as_deref())
        .find(|(key, _)| *key == "orderId")
        .map(|(_, value)| parse_order_id(&Value::String(value.to_owned())))
        .unwrap_or(Err("Order id is required"))
        .map_err(|message| ApiError::field("orderId", message))?;
    let records = flows::payment_records(&app, caller.user.id, caller.operator, order_id)
        .await
        .map_err(|e| match e {
            RecordsError::NotFound => ApiError::not_found("Order"),
            RecordsError::NotOwner => ApiError::Unauthorized,
            RecordsError::Unexpected(e) => ApiError::Unexpected(e),
        })?;
    Ok(Json(records.into_iter().map(PaymentView::from).collect()))
}

/// Pays for one of the caller's orders: its price, in cents, exactly once, with the order id
/// as the provider's idempotency key. Requests arriving while another one for the same order
/// is being charged wait for it and answer the same; once the order is paid, further requests
/// are 409.
#[utoipa::path(post, path = "/api/payments", tag = "payments", request_body = PaymentInput,
    responses(
        (status = 201, description = "Charged; the order becomes complete", body = PaymentReceipt),
        (status = 202, description = "Accepted by Stripe but still processing; a webhook completes it", body = PaymentReceipt),
        (status = 400, description = "Missing or invalid orderId or token, or a token the provider refuses", body = ErrorBody),
        (status = 401, description = "Not signed in, or not the order's owner", body = ErrorBody),
        (status = 402, description = "The card was declined (the provider's message)", body = ErrorBody),
        (status = 404, description = "Unknown order", body = ErrorBody),
        (status = 409, description = "The order is cancelled, expired, refunded or already paid", body = ErrorBody),
        (status = 429, description = "Too many declined payments within 10 minutes (card testing)", body = ErrorBody),
        (status = 503, description = "The provider did not answer; nothing was marked paid, retrying is safe", body = ErrorBody),
    ))]
pub async fn create_payment(
    RequireAuth(user): RequireAuth,
    State(app): State<Payments>,
    Json(input): Json<PaymentInput>,
) -> Result<(StatusCode, Json<PaymentReceipt>), ApiError> {
    let order_id = parse_order_id(input.order_id.as_ref().unwrap_or(&Value::Null));
    let token = parse_token(input.token.as_ref().unwrap_or(&Value::Null));
    let (order_id, token) = match (order_id, token) {
        (Ok(order_id), Ok(token)) => (order_id, token),
        (order_id, token) => {
            let mut errors = Vec::new();
            if let Err(message) = order_id {
                errors.push(ErrorItem::field("orderId", message));
            }
            if let Err(message) = token {
                errors.push(ErrorItem::field("token", message));
            }
            return Err(ApiError::Validation(errors));
        }
    };
    let outcome = flows::pay_for_order(&app, user.id, order_id, &token)
        .await
        .map_err(|e| match e {
            PayError::NotFound => ApiError::not_found("Order"),
            PayError::NotOwner => ApiError::Unauthorized,
            PayError::Cancelled => ApiError::Conflict("The order is cancelled".into()),
            PayError::AlreadyPaid => ApiError::Conflict("The order is already paid".into()),
            e @ (PayError::Refunded | PayError::Expired | PayError::CancelledWhilePaying) => {
                ApiError::Conflict(e.to_string())
            }
            PayError::TooManyDeclines { retry_after_secs } => {
                ApiError::TooManyRequests { retry_after_secs }
            }
            PayError::ProviderRefused(_) => ApiError::Unavailable(
                "The payment provider refused the request; nothing was charged. Please try again shortly".into(),
            ),
            PayError::Declined(message) => ApiError::PaymentRequired(message),
            PayError::InvalidToken(message) => ApiError::field("token", message),
            PayError::Unavailable(_) => ApiError::Unavailable(
                "The payment provider is not answering; nothing was marked paid. Please try again shortly".into(),
            ),
            PayError::InProgress => ApiError::Unavailable(
                "A payment for this order is in progress; please try again shortly".into(),
            ),
            PayError::Unexpected(e) => ApiError::Unexpected(e),
        })?;
    Ok(match outcome {
        PayOutcome::Paid(id) => (StatusCode::CREATED, Json(PaymentReceipt { id })),
        PayOutcome::Processing(id) => (StatusCode::ACCEPTED, Json(PaymentReceipt { id })),
    })
}
