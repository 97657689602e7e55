//! SQL on payments' tables. Functions take a connection; flows decide transactions. A
//! transaction that touches an order and its payment locks the order first (see the
//! migration), then the payment, then its refund.

pub mod arrivals;
pub mod declines;
pub mod lease;
pub mod orders;
pub mod payments;
pub mod refunds;
pub mod unmatched_charges;
