//! Ids a client sends: in a path, or as a field of a JSON body.
//!
//! - [`PathId`]: axum's own `Path` rejects a segment that is not valid UTF-8 (`%FF`) with a
//!   plain-text 400; an id that cannot be read names nothing, so it is the contract's 404 in
//!   its JSON body ([`PathId::or_not_found`]), worded for the resource.
//! - [`body_id`]: a UUID held in a JSON string field (`ticketId`, `orderId`): required, a
//!   string, a UUID (surrounding spaces and the hyphen-less form accepted). Whether the thing
//!   it names exists is a later question (404), not a validation error.

use axum::{
    extract::{FromRequestParts, Path},
    http::request::Parts,
};
use serde_json::Value;
use uuid::Uuid;

use crate::ApiError;

/// The one path parameter of a route, as an id: `None` when it is not one (never a rejection,
/// so a handler may validate its body first).
#[derive(Debug, Clone, Copy)]
pub struct PathId(pub Option<Uuid>);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = Path::<String>::from_request_parts(parts, state).await.ok();
        Ok(PathId(raw.and_then(|Path(raw)| Uuid::parse_str(&raw).ok())))
    }
}

impl PathId {
    /// The id, or the contract's 404 for `resource` ("Ticket not found").
    pub fn or_not_found(self, resource: &str) -> Result<Uuid, ApiError> {
        self.0.ok_or_else(|| ApiError::not_found(resource))
    }
}

/// What to say about an id field, in the contract's words.
#[derive(Debug, Clone, Copy)]
pub struct IdField {
    /// Missing, null or blank: "Ticket id is required".
    pub required: &'static str,
    /// Not a string: "Ticket id must be a string".
    pub not_a_string: &'static str,
    /// A string but not a UUID: "Ticket id must be a valid ticket id".
    pub invalid: &'static str,
}

/// Reads the UUID in a JSON body field (`None` when the field is absent).
pub fn body_id(value: Option<&Value>, field: &IdField) -> Result<Uuid, &'static str> {
    match value.unwrap_or(&Value::Null) {
        Value::Null => Err(field.required),
        Value::String(text) if text.trim().is_empty() => Err(field.required),
        Value::String(text) => Uuid::parse_str(text.trim()).map_err(|_| field.invalid),
        _ => Err(field.not_a_string),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const THING: IdField = IdField {
        required: "required",
        not_a_string: "not a string",
        invalid: "invalid",
    };

    #[test]
    fn a_uuid_string_is_read_in_either_form_and_with_spaces() {
        let id = Uuid::now_v7();
        for text in [id.to_string(), format!(" {id} "), id.simple().to_string()] {
            assert_eq!(body_id(Some(&json!(text)), &THING), Ok(id), "{text:?}");
        }
    }

    #[test]
    fn each_kind_of_wrong_value_gets_its_message() {
        assert_eq!(body_id(None, &THING), Err("required"));
        assert_eq!(body_id(Some(&json!(null)), &THING), Err("required"));
        assert_eq!(body_id(Some(&json!("  ")), &THING), Err("required"));
        assert_eq!(body_id(Some(&json!(12)), &THING), Err("not a string"));
        assert_eq!(body_id(Some(&json!(["x"])), &THING), Err("not a string"));
        assert_eq!(body_id(Some(&json!("not-a-uuid")), &THING), Err("invalid"));
    }
}
