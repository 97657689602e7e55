//! Order a ticket, list and show one's orders, cancel one.

use axum::{extract::State, http::StatusCode};
use serde::Deserialize;
use serde_json::Value;
use ticketing_common::{ApiError, Json, PathId, RequireAuth, error::ErrorBody, session::Caller};
use utoipa::ToSchema;

use crate::{
    app::Orders,
    domain::{Order, parse_event_id, parse_ticket_id},
    flows::{self, CancelError, CreateError, ShowError},
};

/// What to order: a ticket, or the best available seat of an event (one of the two).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderInput {
    /// The id of a ticket (or of one seat of an event). `null` counts as absent.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub ticket_id: Option<Value>,
    /// The id of an event: its lowest free seat is ordered. `null` counts as absent.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub event_id: Option<Value>,
}

/// Orders a ticket, or the best available seat of an event; the order holds it until paid,
/// cancelled, or expired.
#[utoipa::path(post, path = "/api/orders", tag = "orders", request_body = OrderInput,
    responses(
        (status = 201, body = Order),
        (status = 400, description = "Missing or invalid ticketId or eventId, or both given", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "Unknown ticket or event", body = ErrorBody),
        (status = 409, description = "The ticket is held by another order, the event is sold out or has started, the buyer holds the event's maxPerBuyer seats, or the buyer already holds MAX_LIVE_ORDERS_PER_USER unpaid orders", body = ErrorBody),
    ))]
pub async fn create_order(
    RequireAuth(user): RequireAuth,
    State(app): State<Orders>,
    Json(input): Json<OrderInput>,
) -> Result<(StatusCode, Json<Order>), ApiError> {
    let order = match (&input.ticket_id, &input.event_id) {
        (Some(_), Some(_)) => {
            return Err(ApiError::field(
                "eventId",
                "Give a ticketId or an eventId, not both",
            ));
        }
        (None, Some(event_id)) => {
            let event_id =
                parse_event_id(event_id).map_err(|message| ApiError::field("eventId", message))?;
            flows::create_order_for_event(&app, user.id, event_id).await
        }
        (ticket_id, None) => {
            let ticket_id = parse_ticket_id(ticket_id.as_ref().unwrap_or(&Value::Null))
                .map_err(|message| ApiError::field("ticketId", message))?;
            flows::create_order(&app, user.id, ticket_id).await
        }
    }
    .map_err(|e| match e {
        CreateError::TicketNotFound => ApiError::not_found("Ticket"),
        CreateError::EventNotFound => ApiError::not_found("Event"),
        CreateError::TicketHeld => ApiError::Conflict("The ticket is already reserved".into()),
        error @ (CreateError::TooManyLive { .. }
        | CreateError::SoldOut
        | CreateError::EventStarted
        | CreateError::TooManyForEvent { .. }) => ApiError::Conflict(error.to_string()),
        CreateError::Unexpected(e) => ApiError::Unexpected(e),
    })?;
    Ok((StatusCode::CREATED, Json(order)))
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/api/orders", tag = "orders",
    responses(
        (status = 200, body = [Order]),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn list_orders(
    RequireAuth(user): RequireAuth,
    State(app): State<Orders>,
) -> Result<Json<Vec<Order>>, ApiError> {
    Ok(Json(flows::list_orders(&app, user.id).await?))
}

/// One of the caller's orders (operators may read any order).
#[utoipa::path(get, path = "/api/orders/{id}", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id")),
    responses(
        (status = 200, body = Order),
        (status = 401, description = "Not signed in, or neither the owner nor an operator", body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn show_order(
    caller: Caller,
    State(app): State<Orders>,
    id: PathId,
) -> Result<Json<Order>, ApiError> {
    let id = id.or_not_found("Order")?;
    let order = flows::show_order(&app, caller.user.id, caller.operator, id)
        .await
        .map_err(|e| match e {
            ShowError::NotFound => ApiError::not_found("Order"),
            ShowError::NotOwner => ApiError::Unauthorized,
            ShowError::Unexpected(e) => ApiError::Unexpected(e),
        })?;
    Ok(Json(order))
}

/// Cancels one of the caller's orders; its ticket can be ordered again at once. Cancelling a
/// cancelled order is a success that changes nothing.
#[utoipa::path(delete, path = "/api/orders/{id}", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id")),
    responses(
        (status = 204, description = "Cancelled"),
        (status = 401, description = "Not signed in, or not the owner", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The order is paid or refunded", body = ErrorBody),
    ))]
pub async fn cancel_order(
    RequireAuth(user): RequireAuth,
    State(app): State<Orders>,
    id: PathId,
) -> Result<StatusCode, ApiError> {
    let id = id.or_not_found("Order")?;
    flows::cancel_order(&app, user.id, id)
        .await
        .map_err(|e| match e {
            CancelError::NotFound => ApiError::not_found("Order"),
            CancelError::NotOwner => ApiError::Unauthorized,
            e @ (CancelError::Complete | CancelError::Refunded) => {
                ApiError::Conflict(e.to_string())
            }
            CancelError::Unexpected(e) => ApiError::Unexpected(e),
        })?;
    Ok(StatusCode::NO_CONTENT)
}
