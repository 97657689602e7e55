//! Create, list, show and edit events with many seats (`/api/events`).

use axum::{
    extract::{RawQuery, State},
    http::StatusCode,
    response::Response,
};
use serde::Deserialize;
use serde_json::{Map, Value};
use ticketing_common::{
    ApiError, Json, PathId, RequireAuth,
    error::{ErrorBody, ErrorItem},
    http::{decode_query_value, query_pairs},
};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::json_bytes;
use crate::{
    app::Tickets,
    domain::event::{self, Event, FieldError},
    flows::{self, EventError},
};

/// A new event. Price, seats and seats per buyer are fixed once created.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // the schema of the body; the handler reads it field by field
pub struct EventInput {
    /// 1–200 characters after trimming; no control characters.
    #[schema(
        required = true,
        min_length = 1,
        max_length = 200,
        example = "Winter concert"
    )]
    title: Option<String>,
    /// 1–200 characters after trimming; no control characters.
    #[schema(
        required = true,
        min_length = 1,
        max_length = 200,
        example = "Town hall"
    )]
    venue: Option<String>,
    /// At most 5,000 characters; line breaks and tabs allowed.
    #[schema(max_length = 5000)]
    description: Option<String>,
    /// RFC 3339, in the future.
    #[schema(required = true, value_type = String, format = DateTime, example = "2027-01-12T20:00:00Z")]
    starts_at: Option<String>,
    /// As a ticket's price: > 0, ≤ 1,000,000, at most two decimals.
    #[schema(required = true, value_type = f64, example = 25.0)]
    price: Option<Value>,
    /// 1–100,000.
    #[schema(required = true, minimum = 1, maximum = 100000, example = 500)]
    seats: Option<i64>,
    /// 1–10, default 4.
    #[schema(minimum = 1, maximum = 10, example = 4)]
    max_per_buyer: Option<i64>,
}

/// An event's editable fields. `price`, `seats` and `maxPerBuyer` may be restated, not changed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // the schema of the body; the handler reads it field by field
pub struct EventEdit {
    #[schema(required = true, min_length = 1, max_length = 200)]
    title: Option<String>,
    #[schema(required = true, min_length = 1, max_length = 200)]
    venue: Option<String>,
    #[schema(max_length = 5000)]
    description: Option<String>,
    #[schema(required = true, value_type = String, format = DateTime)]
    starts_at: Option<String>,
}

/// Paging and search of the events list.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventListParams {
    /// 1–100, default 20.
    pub limit: Option<i64>,
    /// The next page: events after this one, soonest first.
    pub after: Option<Uuid>,
    /// Words to find in the title, venue or description (case-insensitive), ≤ 200 characters.
    pub q: Option<String>,
}

const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;
const MAX_QUERY: usize = 200;

impl EventListParams {
    fn parse(query: Option<&str>) -> Result<EventListParams, ApiError> {
        let mut params = EventListParams {
            limit: None,
            after: None,
            q: None,
        };
        let mut errors = Vec::new();
        for (key, value) in query_pairs(query) {
            match key {
                "limit" => match value.parse::<i64>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => params.limit = Some(n),
                    _ => errors.push(ErrorItem::field(
                        "limit",
                        "Limit must be a whole number from 1 to 100",
                    )),
                },
                "after" => match Uuid::parse_str(value) {
                    Ok(id) => params.after = Some(id),
                    Err(_) => errors.push(ErrorItem::field("after", "After must be an event id")),
                },
                "q" => {
                    let Some(q) = decode_query_value(value) else {
                        errors.push(ErrorItem::field("q", "Search must be UTF-8 text"));
                        continue;
                    };
                    let q = q.trim();
                    if q.chars().count() > MAX_QUERY {
                        errors.push(ErrorItem::field(
                            "q",
                            "Search must be at most 200 characters",
                        ));
                    } else if ticketing_common::text::check(q, false).is_err() {
                        errors.push(ErrorItem::field(
                            "q",
                            "Search must not contain control characters",
                        ));
                    } else if !q.is_empty() {
                        params.q = Some(q.to_lowercase());
                    }
                }
                _ => {}
            }
        }
        if errors.is_empty() {
            Ok(params)
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

fn validation(errors: Vec<FieldError>) -> ApiError {
    ApiError::Validation(
        errors
            .into_iter()
            .map(|(field, message)| ErrorItem::field(field, message))
            .collect(),
    )
}

/// Creates an event and its seats, labelled "1"…"N".
#[utoipa::path(post, path = "/api/events", tag = "events", request_body = EventInput,
    responses(
        (status = 201, body = Event),
        (status = 400, description = "A refused field, named", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn create_event(
    RequireAuth(user): RequireAuth,
    State(app): State<Tickets>,
    Json(body): Json<Map<String, Value>>,
) -> Result<(StatusCode, Json<Event>), ApiError> {
    let new = event::parse_new(&body, OffsetDateTime::now_utc()).map_err(validation)?;
    let event = flows::create_event(&app, user.id, new).await?;
    Ok((StatusCode::CREATED, Json(event)))
}

/// Upcoming events, soonest first. The first page is served from the cache.
#[utoipa::path(get, path = "/api/events", tag = "events", params(EventListParams),
    responses((status = 200, body = [Event]), (status = 400, body = ErrorBody)))]
pub async fn list_events(
    State(app): State<Tickets>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = EventListParams::parse(query.as_deref())?;
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    let body = flows::list_events_json(&app, limit, params.after, params.q).await?;
    Ok(json_bytes(StatusCode::OK, body))
}

/// The caller's events, newest first (`after`: the next page, older than that event; `q` is
/// not read here).
#[utoipa::path(get, path = "/api/events/mine", tag = "events", params(EventListParams),
    responses(
        (status = 200, body = [Event]),
        (status = 400, body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn list_my_events(
    RequireAuth(user): RequireAuth,
    State(app): State<Tickets>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<Event>>, ApiError> {
    let params = EventListParams::parse(query.as_deref())?;
    let limit = params.limit.unwrap_or(MAX_LIMIT);
    Ok(Json(
        flows::list_owned_events(&app, user.id, limit, params.after).await?,
    ))
}

/// One event, with its seats left. Served from the cache.
#[utoipa::path(get, path = "/api/events/{id}", tag = "events",
    params(("id" = Uuid, Path, description = "Event id")),
    responses((status = 200, body = Event), (status = 404, body = ErrorBody)))]
pub async fn show_event(State(app): State<Tickets>, id: PathId) -> Result<Response, ApiError> {
    let id = id.or_not_found("Event")?;
    match flows::get_event_json(&app, id).await? {
        Some(body) => Ok(json_bytes(StatusCode::OK, body)),
        None => Err(ApiError::not_found("Event")),
    }
}

/// Changes an event's title, venue, description and start; organiser only. Price, seats and
/// seats per buyer are fixed (changing them is 409).
#[utoipa::path(put, path = "/api/events/{id}", tag = "events", request_body = EventEdit,
    params(("id" = Uuid, Path, description = "Event id")),
    responses(
        (status = 200, body = Event),
        (status = 400, body = ErrorBody),
        (status = 401, description = "Not signed in, or not the organiser", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Changes price, seats or seats per buyer", body = ErrorBody),
    ))]
pub async fn update_event(
    RequireAuth(user): RequireAuth,
    State(app): State<Tickets>,
    id: PathId,
    Json(body): Json<Map<String, Value>>,
) -> Result<Json<Event>, ApiError> {
    let mut errors = Vec::new();
    let text = event::parse_text(&body, OffsetDateTime::now_utc(), &mut errors);
    let fixed = event::parse_fixed(&body, &mut errors);
    let Some(text) = text.filter(|_| errors.is_empty()) else {
        return Err(validation(errors));
    };
    let id = id.or_not_found("Event")?;
    let event = flows::update_event(&app, user.id, id, text, fixed)
        .await
        .map_err(|error| match error {
            EventError::NotFound => ApiError::not_found("Event"),
            EventError::NotOwner => ApiError::Unauthorized,
            EventError::FixedChanged => ApiError::Conflict(error.to_string()),
            EventError::Unexpected(e) => ApiError::Unexpected(e),
        })?;
    Ok(Json(event))
}
