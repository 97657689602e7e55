//! The `ticketId` of a new order.

use serde_json::Value;
use ticketing_common::ids::{self, IdField};
use uuid::Uuid;

/// What the contract says about a bad `ticketId`.
pub const TICKET_ID: IdField = IdField {
    required: "Ticket id is required",
    not_a_string: "Ticket id must be a string",
    invalid: "Ticket id must be a valid ticket id",
};

/// What the contract says about a bad `eventId`.
pub const EVENT_ID: IdField = IdField {
    required: "Event id is required",
    not_a_string: "Event id must be a string",
    invalid: "Event id must be a valid event id",
};

/// Parses the requested event id from its JSON value, like a ticket id.
pub fn parse_event_id(value: &Value) -> Result<Uuid, &'static str> {
    ids::body_id(Some(value), &EVENT_ID)
}

/// Parses the requested ticket id from its JSON value: a string holding a UUID. Whether the
/// ticket exists is a later question (404), not a validation error.
pub fn parse_ticket_id(value: &Value) -> Result<Uuid, &'static str> {
    ids::body_id(Some(value), &TICKET_ID)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_uuid_string_is_a_ticket_id() {
        let id = Uuid::now_v7();
        assert_eq!(parse_ticket_id(&json!(id.to_string())), Ok(id));
        assert_eq!(parse_ticket_id(&json!(format!(" {id} "))), Ok(id));
        assert_eq!(
            parse_ticket_id(&json!(id.simple().to_string())),
            Ok(id),
            "the hyphen-less form names the same ticket"
        );
    }

    #[test]
    fn anything_else_is_refused_with_a_reason() {
        assert_eq!(parse_ticket_id(&Value::Null), Err("Ticket id is required"));
        assert_eq!(parse_ticket_id(&json!("")), Err("Ticket id is required"));
        assert_eq!(parse_ticket_id(&json!("  ")), Err("Ticket id is required"));
        assert_eq!(
            parse_ticket_id(&json!("abc")),
            Err("Ticket id must be a valid ticket id")
        );
        assert_eq!(
            parse_ticket_id(&json!("'; DROP TABLE orders; --")),
            Err("Ticket id must be a valid ticket id")
        );
        for value in [json!(5), json!(true), json!([]), json!({"id": "x"})] {
            assert_eq!(
                parse_ticket_id(&value),
                Err("Ticket id must be a string"),
                "{value}"
            );
        }
    }
}
