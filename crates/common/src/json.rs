//! A JSON body extractor whose every rejection is the contract's 400 body.
//!
//! axum's own `Json` answers rejections in plain text (and 415/422); clients of this API expect
//! `{"errors": [...]}` with status 400. A wrong-typed field names the field. An empty body is
//! read as `{}`, so a request with no body gets one validation error per required field
//! instead of a parse error.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::header::CONTENT_TYPE,
    response::{IntoResponse, Response},
};
use serde::{Serialize, de::DeserializeOwned};

use crate::error::{ApiError, ErrorItem};

/// Extracts and deserialises a JSON body; responds like axum's `Json` too.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return parse(b"{}").map(Json);
        }
        if is_json != Some(true) {
            return Err(ApiError::BadRequest(
                "Expected a JSON body with Content-Type: application/json".into(),
            ));
        }
        parse(&bytes).map(Json)
    }
}

/// Deserialises JSON, naming the offending field when the shape is wrong.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::BadRequest(format!("Malformed JSON: {inner}"));
        }
        // serde's message carries a position that means nothing to a client; keep the words.
        let message = inner.to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        if path.is_empty() || path == "." {
            ApiError::BadRequest(format!("Invalid JSON body: {message}"))
        } else {
            ApiError::Validation(vec![ErrorItem::field(path, capitalise(&message))])
        }
    })?;
    // Anything but whitespace after the value makes the whole body malformed.
    deserializer
        .end()
        .map_err(|error| ApiError::BadRequest(format!("Malformed JSON: {error}")))?;
    Ok(value)
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use axum::{Router, body::Body, http::StatusCode, routing::post};
    use http_body_util::BodyExt;
    use serde::Deserialize;
    use tower::ServiceExt;

    use super::*;
    use crate::error::ErrorBody;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Input {
        name: Option<String>,
        count: Option<u32>,
    }

    async fn call(content_type: Option<&str>, body: &'static str) -> (StatusCode, ErrorBody) {
        let app = Router::new().route("/", post(|Json(_): Json<Input>| async { "ok" }));
        let mut request = axum::http::Request::post("/");
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        let response = app
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        if status == StatusCode::OK {
            return (status, ErrorBody { errors: vec![] });
        }
        (
            status,
            serde_json::from_slice(&bytes).expect("error body is the contract's JSON"),
        )
    }

    #[tokio::test]
    async fn malformed_json_is_a_400_in_the_error_body() {
        let (status, body) = call(Some("application/json"), "{\"name\": ").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.errors[0].message.starts_with("Malformed JSON"));
    }

    #[tokio::test]
    async fn wrong_content_type_is_a_400_in_the_error_body() {
        let (status, body) = call(Some("text/plain"), "{}x").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.errors[0].message.contains("Content-Type"));
        let (status, _) = call(None, "{\"name\":\"a\"}").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn a_wrong_typed_field_is_named() {
        let (status, body) = call(Some("application/json"), r#"{"count": "many"}"#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body.errors[0].field.as_deref(), Some("count"));
        assert!(!body.errors[0].message.contains("line"));
    }

    #[tokio::test]
    async fn an_empty_body_reads_as_an_empty_object_and_json_variants_pass() {
        assert_eq!(call(None, "").await.0, StatusCode::OK);
        assert_eq!(
            call(Some("application/json; charset=utf-8"), "{}").await.0,
            StatusCode::OK
        );
        assert_eq!(
            call(Some("application/merge-patch+json"), "{}").await.0,
            StatusCode::OK
        );
        let (status, _) = call(Some("application/json"), "[1]").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}
