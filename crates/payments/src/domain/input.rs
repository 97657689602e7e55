//! The `orderId` and `token` of `POST /api/payments`.

use serde_json::Value;
use ticketing_common::ids::{self, IdField};
use uuid::Uuid;

/// The longest token accepted (Stripe object ids are far shorter).
const MAX_TOKEN_LEN: usize = 255;

/// What the contract says about a bad `orderId`.
pub const ORDER_ID: IdField = IdField {
    required: "Order id is required",
    not_a_string: "Order id must be a string",
    invalid: "Order id must be a valid order id",
};

/// Parses the order to pay from its JSON value: a string holding a UUID. Whether the order
/// exists is a later question (404), not a validation error.
pub fn parse_order_id(value: &Value) -> Result<Uuid, &'static str> {
    ids::body_id(Some(value), &ORDER_ID)
}

/// Parses the payment token: a non-empty string of visible ASCII characters (a Stripe payment
/// method or card token, or a development token). Whether the provider accepts it is the
/// provider's answer, not ours.
pub fn parse_token(value: &Value) -> Result<String, &'static str> {
    match value {
        Value::Null => Err("Token is required"),
        Value::String(text) if text.trim().is_empty() => Err("Token is required"),
        Value::String(text) => {
            let text = text.trim();
            if text.len() > MAX_TOKEN_LEN || !text.bytes().all(|b| b.is_ascii_graphic()) {
                Err("Token must be a valid payment token")
            } else {
                Ok(text.to_owned())
            }
        }
        _ => Err("Token must be a string"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_uuid_string_is_an_order_id() {
        let id = Uuid::now_v7();
        assert_eq!(parse_order_id(&json!(id.to_string())), Ok(id));
        assert_eq!(parse_order_id(&json!(format!(" {id} "))), Ok(id));
    }

    #[test]
    fn anything_else_is_not_an_order_id() {
        assert_eq!(parse_order_id(&Value::Null), Err("Order id is required"));
        assert_eq!(parse_order_id(&json!(" ")), Err("Order id is required"));
        assert_eq!(
            parse_order_id(&json!("order-1")),
            Err("Order id must be a valid order id")
        );
        for value in [json!(1), json!(true), json!([]), json!({})] {
            assert_eq!(
                parse_order_id(&value),
                Err("Order id must be a string"),
                "{value}"
            );
        }
    }

    #[test]
    fn a_token_is_a_short_visible_string() {
        assert_eq!(parse_token(&json!("tok_visa")), Ok("tok_visa".into()));
        assert_eq!(
            parse_token(&json!(" pm_card_visa ")),
            Ok("pm_card_visa".into())
        );
        assert_eq!(parse_token(&Value::Null), Err("Token is required"));
        assert_eq!(parse_token(&json!("")), Err("Token is required"));
        assert_eq!(parse_token(&json!(42)), Err("Token must be a string"));
        for bad in ["tok visa", "tok\u{7f}", "tok_é", &"x".repeat(256)] {
            assert_eq!(
                parse_token(&json!(bad)),
                Err("Token must be a valid payment token"),
                "{bad:?}"
            );
        }
    }
}
