//! SQL on auth's tables. Functions take a connection; the flow decides transactions.

pub mod users;
