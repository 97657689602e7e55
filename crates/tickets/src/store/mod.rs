//! SQL on tickets' tables. Functions take a connection; flows decide transactions.

pub mod events;
pub mod tickets;
