//! SQL on orders' tables. Functions take a connection; flows decide transactions.

pub mod events;
pub mod orders;
pub mod tickets;
