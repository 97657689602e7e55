//! Payment rules and shapes. No I/O.
//!
//! - [`input`]: the `orderId` and `token` of a payment request;
//! - [`payment`]: a payment attempt as stored, its states, its idempotency key;
//! - [`currency`]: the charge currency (two-decimal currencies only: prices are cents);
//! - [`webhook`]: `Stripe-Signature` verification and the webhook events we act on.

mod currency;
mod input;
mod payment;
pub mod webhook;

pub use currency::Currency;
pub use input::{parse_order_id, parse_token};
pub use payment::{Payment, PaymentState, idempotency_key};
