//! Every decision of the payments service. A write runs in one transaction with its outbox
//! event; the provider is called outside any transaction.
//!
//! - [`pay`](self::pay): a buyer pays for an order (claim the attempt, charge, record);
//! - [`record`](self::record): recording a charge: the payment, the order, `payment.created`,
//!   in one transaction; shared by requests, webhooks and the reconciler;
//! - [`refund`](self::refund): giving a charge back, at an operator's request or because the
//!   order had been cancelled;
//! - [`records`](self::records): an order's payments, for its receipt;
//! - [`webhook`](self::webhook): what verified Stripe events change;
//! - [`replica`](self::replica): the order replica, in version order;
//! - [`reconcile`](self::reconcile): finishing what no request is left to finish.

mod pay;
mod reconcile;
mod record;
mod records;
mod refund;
mod replica;
mod webhook;

pub use pay::{PayError, PayOutcome, pay_for_order};
pub use reconcile::{reconcile_once, run_reconciler};
pub use record::{CHARGES, PAID_ORDERS_NOT_LIVE, UNMATCHED_CHARGES};
pub use records::{Attention, PaymentRecord, RecordsError, attention, payment_records};
pub use refund::{REFUNDS, RefundError, Refunded, refund_order};
pub use replica::{add_order, cancel_order, complete_order};
pub use webhook::handle_stripe_event;
