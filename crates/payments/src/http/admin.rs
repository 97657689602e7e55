//! What operators must look at (`GET /api/payments/admin/attention`).

use axum::extract::State;
use serde::Serialize;
use ticketing_common::{ApiError, Json, error::ErrorBody, session::RequireOperator};
use ticketing_events::Cents;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{app::Payments, flows};

/// Money taken that no payment holds (a second charge, a charge for an order without a
/// payment, a webhook that disagreed with its attempt): to give back by hand.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnmatchedChargeView {
    pub charge_id: String,
    pub order_id: Option<Uuid>,
    #[schema(value_type = Option<f64>, example = 19.99)]
    pub amount: Option<Cents>,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: time::OffsetDateTime,
}

/// A refund the provider refused: the buyer has not been paid back.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefusedRefundView {
    pub id: Uuid,
    pub order_id: Uuid,
    #[schema(value_type = f64, example = 19.99)]
    pub amount: Cents,
    /// `operator` or `cancelled_order`.
    pub reason: String,
    /// The provider's words.
    pub message: Option<String>,
    /// The operator who asked, for an operator's refund.
    pub requested_by: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: time::OffsetDateTime,
}

/// The attention list: `{unmatchedCharges, refusedRefunds}`, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttentionView {
    pub unmatched_charges: Vec<UnmatchedChargeView>,
    pub refused_refunds: Vec<RefusedRefundView>,
}

/// Unmatched charges and refunds the provider refused. Operators only.
#[utoipa::path(get, path = "/api/payments/admin/attention", tag = "payments",
    responses(
        (status = 200, body = AttentionView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
    ))]
pub async fn attention(
    RequireOperator(_): RequireOperator,
    State(app): State<Payments>,
) -> Result<Json<AttentionView>, ApiError> {
    let attention = flows::attention(&app).await?;
    Ok(Json(AttentionView {
        unmatched_charges: attention
            .unmatched_charges
            .into_iter()
            .map(|c| UnmatchedChargeView {
                charge_id: c.charge_id,
                order_id: c.order_id,
                amount: c.amount.map(Cents),
                reason: c.reason,
                recorded_at: c.recorded_at,
            })
            .collect(),
        refused_refunds: attention
            .refused_refunds
            .into_iter()
            .map(|r| RefusedRefundView {
                id: r.id,
                order_id: r.order_id,
                amount: Cents(r.amount_cents),
                reason: r.reason.as_str().to_owned(),
                message: r.failure_message,
                requested_by: r.requested_by,
                created_at: r.created_at,
            })
            .collect(),
    }))
}
