//! Tickets' HTTP API, `/api/tickets` and `/api/events`, as `CONTRACT.md` (Tickets, Events)
//! describes it.

mod events;
mod tickets;

use axum::{
    http::{StatusCode, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::Tickets;

pub fn router(app: Tickets) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(tickets::create_ticket, tickets::list_tickets))
        .routes(routes!(tickets::list_tickets_singular))
        .routes(routes!(tickets::list_mine))
        .routes(routes!(
            tickets::show_ticket,
            tickets::update_ticket,
            tickets::withdraw_ticket
        ))
        .routes(routes!(events::create_event, events::list_events))
        .routes(routes!(events::list_my_events))
        .routes(routes!(events::show_event, events::update_event))
        .with_state(app)
}

/// A JSON body the cache already holds as bytes.
fn json_bytes(status: StatusCode, body: Bytes) -> Response {
    (status, [(CONTENT_TYPE, "application/json")], body).into_response()
}
