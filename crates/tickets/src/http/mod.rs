//! Tickets' HTTP API, `/api/tickets`, as `CONTRACT.md` (Tickets) describes it.

mod tickets;

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
        .with_state(app)
}
