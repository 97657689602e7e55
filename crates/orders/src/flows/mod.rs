//! Every decision of the orders service. A write runs in one transaction with its outbox
//! event; a refused conditional write is explained by reading afterwards, never by reading
//! first.
//!
//! - [`orders`](self::orders): what buyers do over HTTP (order, list, show, cancel);
//! - [`lifecycle`](self::lifecycle): what other services tell us about an order (expired,
//!   paid, refunded);
//! - [`replica`](self::replica): the ticket replica, in version order, and the withdrawal of
//!   a ticket;
//! - [`sweep`](self::sweep): the safety net that cancels orders whose expiry never came.

mod lifecycle;
mod orders;
mod replica;
mod sweep;

pub use lifecycle::{
    PAYMENTS_FOR_CANCELLED, complete_for_payment, expire_order, refund_for_payment,
};
pub use orders::{
    CancelError, CreateError, ShowError, cancel_order, create_order, list_orders, show_order,
};
pub use replica::{add_ticket, update_ticket, withdraw_ticket};
pub use sweep::{ORDERS_SWEPT, run_sweep, sweep_expired};
