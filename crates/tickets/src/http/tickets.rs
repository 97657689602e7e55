//! Create, list, show and update tickets.

use axum::{
    extract::{RawQuery, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::Value;
use ticketing_common::{
    ApiError, Json, PathId, RequireAuth,
    error::{ErrorBody, ErrorItem},
    http::query_pairs,
};
use ticketing_events::Cents;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::json_bytes;
use crate::{
    app::Tickets,
    domain::{Cursor, Ticket, Title, parse_price},
    flows::{self, UpdateError},
};

/// Title and price of a ticket.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TicketInput {
    /// 1–200 characters after trimming; no control or bidirectional override characters.
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]*$",
        example = "Concert"
    )]
    pub title: Option<String>,
    /// > 0, ≤ 1,000,000, at most two decimals; a numeric string such as `"25.50"` is accepted.
    #[schema(required = true, schema_with = price_input)]
    pub price: Option<Value>,
}

/// A price as input: a JSON number or a numeric string, > 0, ≤ 1,000,000, at most two
/// decimals.
fn price_input() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
    let one_of = OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::new(Type::Number))
                .exclusive_minimum(Some(0.0))
                .maximum(Some(crate::domain::MAX_CENTS as f64 / 100.0))
                .multiple_of(Some(0.01)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::new(Type::String))
                .pattern(Some(r"^\d{1,7}(\.\d{1,2})?$")),
        )
        .description(Some(
            "> 0, ≤ 1,000,000, at most two decimals; a numeric string such as \"25.50\" is accepted.",
        ))
        .examples([serde_json::json!(25.5), serde_json::json!("25.50")])
        .build();
    Schema::OneOf(one_of)
}

impl TicketInput {
    /// Every problem at once, each naming its field.
    fn parse(self) -> Result<(Title, Cents), ApiError> {
        let mut errors = Vec::new();
        let title = Title::parse(self.title.as_deref().unwrap_or_default())
            .map_err(|message| errors.push(ErrorItem::field("title", message)))
            .ok();
        let price = parse_price(self.price.as_ref().unwrap_or(&Value::Null))
            .map_err(|message| errors.push(ErrorItem::field("price", message)))
            .ok();
        match (title, price) {
            (Some(title), Some(price)) => Ok((title, price)),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// Paging of a list.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1–1000, default 100.
    pub limit: Option<i64>,
    /// Only tickets older than this ticket id (the last id of the page before: the next page).
    pub before: Option<Uuid>,
    /// Only tickets newer than this ticket id (the first id of the page after: the previous
    /// page). Not together with `before`.
    pub after: Option<Uuid>,
    /// That event's free seats in seat order instead (with `limit` only).
    #[param(rename = "eventId")]
    pub event_id: Option<Uuid>,
}

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

impl ListParams {
    fn parse(query: Option<&str>) -> Result<ListParams, ApiError> {
        let mut limit = None;
        let mut before = None;
        let mut after = None;
        let mut event_id = None;
        let mut errors = Vec::new();
        for (key, value) in query_pairs(query) {
            match key {
                "limit" => match value.parse::<i64>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => limit = Some(n),
                    _ => errors.push(ErrorItem::field(
                        "limit",
                        "Limit must be a whole number from 1 to 1000",
                    )),
                },
                "before" => match Uuid::parse_str(value) {
                    Ok(id) => before = Some(id),
                    Err(_) => errors.push(ErrorItem::field("before", "Before must be a ticket id")),
                },
                "after" => match Uuid::parse_str(value) {
                    Ok(id) => after = Some(id),
                    Err(_) => errors.push(ErrorItem::field("after", "After must be a ticket id")),
                },
                "eventId" => match Uuid::parse_str(value) {
                    Ok(id) => event_id = Some(id),
                    Err(_) => {
                        errors.push(ErrorItem::field("eventId", "Event id must be an event id"))
                    }
                },
                _ => {}
            }
        }
        if before.is_some() && after.is_some() {
            errors.push(ErrorItem::field(
                "after",
                "Give before (the next page) or after (the previous page), not both",
            ));
        }
        if event_id.is_some() && (before.is_some() || after.is_some()) {
            errors.push(ErrorItem::field(
                "eventId",
                "An event's seats are listed in seat order, without before or after",
            ));
        }
        if errors.is_empty() {
            Ok(ListParams {
                limit,
                before,
                after,
                event_id,
            })
        } else {
            Err(ApiError::Validation(errors))
        }
    }

    fn limit(&self) -> i64 {
        self.limit.unwrap_or(DEFAULT_LIMIT)
    }

    fn cursor(&self) -> Option<Cursor> {
        self.before
            .map(Cursor::Before)
            .or(self.after.map(Cursor::After))
    }
}

/// Lists a ticket for sale.
#[utoipa::path(post, path = "/api/tickets", tag = "tickets", request_body = TicketInput,
    responses(
        (status = 201, body = Ticket),
        (status = 400, description = "Invalid title or price", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn create_ticket(
    RequireAuth(user): RequireAuth,
    State(app): State<Tickets>,
    Json(input): Json<TicketInput>,
) -> Result<(StatusCode, Json<Ticket>), ApiError> {
    let (title, price) = input.parse()?;
    let ticket = flows::create_ticket(&app, user.id, title, price).await?;
    Ok((StatusCode::CREATED, Json(ticket)))
}

/// Tickets on sale (not reserved or sold) that belong to no event, newest first, served from
/// the cache; or, with `eventId`, that event's free seats in seat order.
#[utoipa::path(get, path = "/api/tickets", tag = "tickets", params(ListParams),
    responses(
        (status = 200, body = [Ticket]),
        (status = 400, body = ErrorBody),
        (status = 404, description = "Unknown eventId", body = ErrorBody),
    ))]
pub async fn list_tickets(
    State(app): State<Tickets>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = ListParams::parse(query.as_deref())?;
    if let Some(event_id) = params.event_id {
        let seats = flows::free_seats(&app, event_id, params.limit())
            .await?
            .ok_or_else(|| ApiError::not_found("Event"))?;
        return Ok(Json(seats).into_response());
    }
    Ok(json_bytes(
        StatusCode::OK,
        flows::list_json(&app, params.limit(), params.cursor()).await?,
    ))
}

/// The caller's own listings in every state (available, reserved, sold), newest first.
#[utoipa::path(get, path = "/api/tickets/mine", tag = "tickets", params(ListParams),
    responses(
        (status = 200, body = [Ticket]),
        (status = 400, body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn list_mine(
    RequireAuth(user): RequireAuth,
    State(app): State<Tickets>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<Ticket>>, ApiError> {
    let params = ListParams::parse(query.as_deref())?;
    let tickets = flows::list_owned(&app, user.id, params.limit(), params.cursor()).await?;
    Ok(Json(tickets))
}

/// The same list at the singular path the seed report's clients call (`GET /api/ticket`).
#[utoipa::path(get, path = "/api/ticket", tag = "tickets", params(ListParams),
    responses(
        (status = 200, body = [Ticket]),
        (status = 400, body = ErrorBody),
        (status = 404, description = "Unknown eventId", body = ErrorBody),
    ))]
pub async fn list_tickets_singular(
    state: State<Tickets>,
    query: RawQuery,
) -> Result<Response, ApiError> {
    list_tickets(state, query).await
}

/// One ticket, reserved and sold ones too. Served from the cache.
#[utoipa::path(get, path = "/api/tickets/{id}", tag = "tickets",
    params(("id" = Uuid, Path, description = "Ticket id")),
    responses((status = 200, body = Ticket), (status = 404, body = ErrorBody)))]
pub async fn show_ticket(State(app): State<Tickets>, id: PathId) -> Result<Response, ApiError> {
    let id = id.or_not_found("Ticket")?;
    match flows::get_ticket_json(&app, id).await? {
        Some(body) => Ok(json_bytes(StatusCode::OK, body)),
        None => Err(ApiError::not_found("Ticket")),
    }
}

/// Changes title and price; owner only, and not while reserved or sold.
#[utoipa::path(put, path = "/api/tickets/{id}", tag = "tickets", request_body = TicketInput,
    params(("id" = Uuid, Path, description = "Ticket id")),
    responses(
        (status = 200, body = Ticket),
        (status = 400, body = ErrorBody),
        (status = 401, description = "Not signed in, or not the owner", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Reserved or sold", body = ErrorBody),
    ))]
pub async fn update_ticket(
    RequireAuth(user): RequireAuth,
    State(app): State<Tickets>,
    id: PathId,
    Json(input): Json<TicketInput>,
) -> Result<Json<Ticket>, ApiError> {
    let (title, price) = input.parse()?;
    let id = id.or_not_found("Ticket")?;
    let ticket = flows::update_ticket(&app, user.id, id, title, price)
        .await
        .map_err(|e| refusal(e, "edited"))?;
    Ok(Json(ticket))
}

/// Withdraws a ticket from sale; owner only, and not while reserved or sold.
#[utoipa::path(delete, path = "/api/tickets/{id}", tag = "tickets",
    params(("id" = Uuid, Path, description = "Ticket id")),
    responses(
        (status = 204, description = "Withdrawn: the ticket answers 404 from now on"),
        (status = 401, description = "Not signed in, or not the owner", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Reserved or sold", body = ErrorBody),
    ))]
pub async fn withdraw_ticket(
    RequireAuth(user): RequireAuth,
    State(app): State<Tickets>,
    id: PathId,
) -> Result<StatusCode, ApiError> {
    let id = id.or_not_found("Ticket")?;
    flows::withdraw_ticket(&app, user.id, id)
        .await
        .map_err(|e| refusal(e, "withdrawn"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// An owner's refused change as the contract answers it.
fn refusal(error: UpdateError, action: &str) -> ApiError {
    match error {
        UpdateError::NotFound => ApiError::not_found("Ticket"),
        UpdateError::NotOwner => ApiError::Unauthorized,
        UpdateError::Held => ApiError::Conflict(format!(
            "The ticket is reserved or sold and cannot be {action}"
        )),
        UpdateError::Seat => ApiError::Conflict(format!(
            "A seat of an event cannot be {action} on its own: change the event instead"
        )),
        UpdateError::Unexpected(e) => ApiError::Unexpected(e),
    }
}
