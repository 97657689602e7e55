//! Every decision of the payments service. A write runs in one transaction with its outbox
//! event; the provider is called outside any transaction.
//!
//! - [`pay`](self::pay): a buyer pays for an order (claim the attempt, charge, record);
//! - [`record`](self::record): recording a charge: the payment, the order, `payment.created`,
//!   in one transaction; shared by requests and webhooks;
//! - [`webhook`](self::webhook): what verified Stripe events change;
//! - [`replica`](self::replica): the order replica, in version order.

mod pay;
mod record;
mod replica;
mod webhook;

pub use pay::{PayError, PayOutcome, pay_for_order};
pub use record::{CHARGES, PAID_ORDERS_NOT_LIVE, UNMATCHED_CHARGES};
pub use replica::{add_order, cancel_order};
pub use webhook::handle_stripe_event;
