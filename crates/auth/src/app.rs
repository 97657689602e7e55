//! What every part of the auth service shares: its name and its state. A leaf module:
//! `http` and `flows` import it, and it imports none of them.

use std::sync::Arc;

use sqlx::PgPool;
use ticketing_common::{ratelimit::SharedLimit, session::SessionKeys};

/// The component's name, also its database suffix.
pub const NAME: &str = "auth";

/// Everything auth's handlers and flows need.
#[derive(Clone)]
pub struct Auth {
    pub pool: PgPool,
    /// Sign and verify sessions, and revoke them.
    pub keys: Arc<SessionKeys>,
    /// Failed sign-ins per account; `None`: unlimited.
    pub failed_signins: Option<SharedLimit>,
}
