//! Order rules and the order's public shape. No I/O.

mod order;
mod ticket_id;

pub use order::{Order, OrderedTicket};
pub use ticket_id::{parse_event_id, parse_ticket_id};
