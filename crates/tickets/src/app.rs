//! What every part of the tickets service shares: its name and its state. A leaf module:
//! `http`, `listeners` and `flows` import it, and it imports none of them.

use sqlx::PgPool;

use crate::cache;

/// The component's name: database suffix, consumer and metric label.
pub const NAME: &str = "tickets";

/// Everything the service's flows need.
#[derive(Clone)]
pub struct Tickets {
    pub pool: PgPool,
    pub cache: cache::TicketCache,
}
