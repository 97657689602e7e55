//! Orders' HTTP API, `/api/orders`, as `CONTRACT.md` (Orders) describes it. Every route needs
//! a session, checked before anything else.

mod orders;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::Orders;

pub fn router(app: Orders) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(orders::create_order, orders::list_orders))
        .routes(routes!(orders::show_order, orders::cancel_order))
        .with_state(app)
}
